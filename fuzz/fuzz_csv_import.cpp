// Fuzz target: CSV import, the RFC 4180 reader and the partner and renewal row checks, into a
// fresh SQLite database (so an input's result does not depend on earlier ones): a copy of one
// migrated once per process.
// The input is imported as a partners file and as a renewals file (one of the two stops at
// its header); the renewals find the partners of sample/partners.csv already loaded. A bad
// file must come out as CsvError or as problems with line and field; anything else is a
// finding.
#include <filesystem>
#include <memory>

#include "app/config.h"
#include "io/csv.h"
#include "fuzz_support.h"
#include "jobs/import_reference.h"
#include "store/database.h"

namespace {

const sm::config::Settings& settings() {
    // The repository's configuration: its region table checks the country columns.
    static const sm::config::Settings s = sm::app::loadSettings(SUPPORTMAIL_SOURCE_DIR "/config/supportmail.properties");
    return s;
}

/// A migrated database holding the partners of sample/partners.csv, made once.
const std::string& templateDatabase() {
    static const std::string path = [] {
        std::string file = sm::fuzz::scratchDir() + "/template.db";
        auto db = sm::store::Database::open("sqlite:" + file);
        db->migrate();
        sm::jobs::importPartners(*db, settings(), SUPPORTMAIL_SOURCE_DIR "/sample/partners.csv", false, nullptr);
        return file;
    }();
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string file = sm::fuzz::writeScratch("input.csv", sm::fuzz::asView(data, size));
    std::string dbFile = sm::fuzz::scratchDir() + "/input.db";
    for (const char* leftover : {"-wal", "-shm", "-journal"}) std::filesystem::remove(dbFile + leftover);
    std::filesystem::copy_file(templateDatabase(), dbFile, std::filesystem::copy_options::overwrite_existing);
    auto db = sm::store::Database::open("sqlite:" + dbFile);
    for (bool skipBadLines : {false, true}) {
        try {
            sm::jobs::importPartners(*db, settings(), file, skipBadLines, nullptr);
        } catch (const sm::io::CsvError&) {
        }
        try {
            sm::jobs::importRenewals(*db, settings(), file, skipBadLines, nullptr);
        } catch (const sm::io::CsvError&) {
        }
    }
    return 0;
}
