// Activation benchmark: the brief's "a million contracts in a minute".
//
// Creates a temporary SQLite database (the real migrations, WAL,
// synchronous=FULL), loads reference data and N pending renewals (default
// 1,000,000), then times jobs::activate with the real configuration
// (config/supportmail.properties, database.url pointed at the temporary file)
// and the real templates. Only activate() is timed; loading uses bulk inserts.
//
// Data: N/2 partners (gold or silver; HQ in a mix of regions; Vietnamese
// partners get Vietnamese contacts and mail), each with an HQ primary contact
// and a member in the same country (so the regional rule adds a Cc outside
// APAC). Each partner has two renewals: its membership benefit, and SCS or ASfP.
// The membership renewals come first and the SCS/ASfP ones after, so a group
// never sees the same partner twice (the per-group partner cache does not help).
//
// Usage: bench_activate [N] [--batch GROUP] [--keep]
//   --batch overrides activation.batch; --keep leaves the database file behind.
// BENCH_PRAGMAS="a=1;b=2" runs those PRAGMAs on the connection before timing.
// Prints contracts/s, the time, the time extrapolated to 1M, peak RSS, the
// database size, the cost of rendering a sample of the queued ID mails (what
// deliver does), and checks the result (counts, unique IDs, balances).
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <Poco/Data/Session.h>
#include <Poco/Logger.h>

#include "bench_io.h"
#include "app/config.h"
#include "domain/dates.h"
#include "domain/secure_random.h"
#include "jobs/activate.h"
#include "jobs/id_mail.h"
#include "mail/templates.h"
#include "store/database.h"
#include "store/outbox.h"

using namespace Poco::Data::Keywords;
namespace fs = std::filesystem;

namespace {

double seconds(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the process so far (user, system), all threads.
std::pair<double, double> cpuSeconds() {
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return {ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6};
}

struct Country {
    const char* code;
    const char* language;
};
// North America, EMEA, Latin America (regional rule applies) and APAC (it does not).
const Country kCountries[] = {{"US", "en"}, {"DE", "en"}, {"GB", "en"}, {"BR", "en"},
                              {"FR", "en"}, {"VN", "vi"}, {"JP", "en"}, {"CA", "en"}};

void load(sm::store::Database& db, int renewalCount) {
    const int partners = (renewalCount + 1) / 2;
    const std::string today = sm::domain::isoDate(Poco::Timestamp());
    const std::int64_t at = sm::store::Database::nowSeconds();
    auto& s = db.session();
    constexpr int kChunk = 50000;
    s.begin();
    for (int base = 0; base < partners; base += kChunk) {
        std::vector<std::string> pid, pname, membership, country, region, cpid, cemail, cname, ccountry, crole, clang;
        std::vector<std::int64_t> updated;
        for (int i = base; i < std::min(partners, base + kChunk); ++i) {
            const Country& c = kCountries[i % (sizeof kCountries / sizeof kCountries[0])];
            const std::string id = std::to_string(1000000 + i);
            pid.push_back(id);
            pname.push_back(std::string(c.language[0] == 'v' ? "Công ty Phần mềm " : "Partner Systems ") + id);
            membership.push_back(i % 3 == 0 ? "silver" : "gold");
            country.push_back(c.code);
            region.push_back("");  // not read by activation
            updated.push_back(at);
            for (int k = 0; k < 2; ++k) {
                cpid.push_back(id);
                cemail.push_back((k == 0 ? "primary." : "member.") + id + "@partner" + std::to_string(i % 97) +
                                 ".example");
                cname.push_back(c.language[0] == 'v' ? (k == 0 ? "Nguyễn Văn An " : "Trần Thị Bình ") + id
                                                     : (k == 0 ? "Alice Schmidt " : "Bob Weber ") + id);
                ccountry.push_back(c.code);
                crole.push_back(k == 0 ? "hq_primary" : "member");
                clang.push_back(c.language);
            }
        }
        s << "INSERT INTO partners (partner_id, name, membership, hq_country, region, updated_at) "
             "VALUES (?, ?, ?, ?, ?, ?)",
            use(pid), use(pname), use(membership), use(country), use(region), use(updated), now;
        s << "INSERT INTO contacts (partner_id, email, name, country, role, language) VALUES (?, ?, ?, ?, ?, ?)",
            use(cpid), use(cemail), use(cname), use(ccountry), use(crole), use(clang), now;
    }
    for (int base = 0; base < renewalCount; base += kChunk) {
        std::vector<std::string> pid, benefit, date;
        std::vector<std::int64_t> imported;
        for (int r = base; r < std::min(renewalCount, base + kChunk); ++r) {
            const int i = r < partners ? r : r - partners;
            pid.push_back(std::to_string(1000000 + i));
            if (r < partners) benefit.push_back(i % 3 == 0 ? "silver" : "gold");
            else benefit.push_back(i % 2 == 0 ? "scs" : "asfp");
            date.push_back(today);
            imported.push_back(at);
        }
        s << "INSERT INTO renewals (partner_id, benefit, renewal_date, imported_at) VALUES (?, ?, ?, ?)", use(pid),
            use(benefit), use(date), use(imported), now;
    }
    s.commit();
    s << "PRAGMA wal_checkpoint(TRUNCATE)", now;
}

std::int64_t count(sm::store::Database& db, const std::string& sql) {
    std::int64_t n = 0;
    db.session() << sql, into(n), now;
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    int n = 1000000;
    bool keep = false;
    int batch = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--keep") == 0) keep = true;
        else if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) batch = std::atoi(argv[++i]);
        else n = std::atoi(argv[i]);
    }
    if (n <= 0) {
        std::fprintf(stderr, "usage: bench_activate [N] [--batch GROUP] [--keep]\n");
        return 64;
    }

    char dirTemplate[] = "/tmp/bench_activate.XXXXXX";
    if (!mkdtemp(dirTemplate)) {
        std::perror("mkdtemp");
        return 70;
    }
    const std::string dir = dirTemplate;
    const std::string dbFile = dir + "/supportmail.db";

    sm::config::Settings settings = sm::app::loadSettings(std::string(SUPPORTMAIL_SOURCE_DIR) + "/config/supportmail.properties");
    settings.databaseUrl = "sqlite:" + dbFile;
    if (batch > 0) settings.activation.batch = batch;  // what activation.batch in the file would do
    Poco::Logger::root().setLevel(settings.log.level);  // as the application does (no channel: nothing printed)
    Poco::Logger& log = Poco::Logger::get("supportmail");
    sm::mail::TemplateSet templates(settings.templatesDir);
    sm::domain::SystemRandom random;

    int rc = 0;
    {
        auto db = sm::store::Database::open(settings.databaseUrl);
        db->migrate();
        auto t0 = std::chrono::steady_clock::now();
        load(*db, n);
        std::printf("loaded %d partners, %d contacts, %d pending renewals in %.1f s (not timed)\n", (n + 1) / 2,
                    (n + 1) / 2 * 2, n, seconds(t0));
        std::printf("activation.batch = %d, database %s\n", settings.activation.batch, dbFile.c_str());
        std::fflush(stdout);

        if (const char* pr = std::getenv("BENCH_PRAGMAS")) {
            std::string all = pr;
            for (std::size_t b = 0; b < all.size();) {
                std::size_t e = all.find(';', b);
                if (e == std::string::npos) e = all.size();
                std::string one = all.substr(b, e - b);
                if (!one.empty()) db->session() << "PRAGMA " + one, now;
                std::printf("PRAGMA %s\n", one.c_str());
                b = e + 1;
            }
        }
        const double written0 = benchio::writtenMB();
        const auto cpu0 = cpuSeconds();
        t0 = std::chrono::steady_clock::now();
        sm::jobs::ActivationReport report = sm::jobs::activate(*db, settings, templates, random, {}, log);
        const double t = seconds(t0);
        const auto cpu1 = cpuSeconds();
        const double written = benchio::writtenMB() - written0;

        struct rusage ru {};
        getrusage(RUSAGE_SELF, &ru);
        std::printf("activated %d contracts in %.2f s: %.0f contracts/s; 1M would take %.1f s\n", report.activated,
                    t, report.activated / t, t * 1e6 / report.activated);
        std::printf("activation CPU: user %.2f s, sys %.2f s (%.1f us per contract; wall time also waits for "
                    "fsync and for other processes); peak RSS %.1f MB\n",
                    cpu1.first - cpu0.first, cpu1.second - cpu0.second,
                    (cpu1.first - cpu0.first + cpu1.second - cpu0.second) * 1e6 / report.activated,
                    ru.ru_maxrss / 1024.0);
        std::printf("written by activation: %.0f MB (%.1f KB per contract, WAL and checkpoints)\n", written,
                    written * 1e3 / report.activated);
        std::fflush(stdout);

        // Check what was produced.
        const std::int64_t contracts = count(*db, "SELECT COUNT(*) FROM contracts");
        const std::int64_t access = count(*db, "SELECT COUNT(DISTINCT access_id) FROM contracts");
        const std::int64_t contractIds = count(*db, "SELECT COUNT(DISTINCT contract_id) FROM contracts");
        const std::int64_t ledger = count(*db, "SELECT COUNT(*) FROM ledger WHERE delta > 0");
        const std::int64_t mails = count(*db, "SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'");
        const std::int64_t pending = count(*db, "SELECT COUNT(*) FROM renewals WHERE state = 'pending'");
        const std::int64_t mailBytes = count(*db, "SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM outbox_bytes");
        std::printf("contracts %lld (distinct access %lld, contract %lld), ledger grants %lld, mails %lld "
                    "(avg %.0f bytes stored), pending %lld, not activated %zu\n",
                    static_cast<long long>(contracts), static_cast<long long>(access),
                    static_cast<long long>(contractIds), static_cast<long long>(ledger),
                    static_cast<long long>(mails), mails ? static_cast<double>(mailBytes) / mails : 0.0,
                    static_cast<long long>(pending), report.notActivated.size());
        // What moved to delivery: rendering a sample of the queued ID mails (deliver
        // does this once per attempt, then sends over the network).
        {
            const sm::jobs::OutboxRenderer renderer(*db, settings, templates);
            auto rows = sm::store::Outbox(*db).due(sm::store::Database::nowSeconds() + 1, 2000);
            std::size_t bytes = 0;
            const auto r0 = std::chrono::steady_clock::now();
            for (const auto& row : rows) bytes += renderer.bytesOf(row).size();
            const double rt = seconds(r0);
            if (!rows.empty())
                std::printf("rendered %zu queued ID mails as deliver does: %.0f us each, avg %.0f bytes\n",
                            rows.size(), rt * 1e6 / rows.size(), static_cast<double>(bytes) / rows.size());
        }
        if (contracts != n || access != n || contractIds != n || ledger != n || mails != n || pending != 0 ||
            report.activated != n) {
            std::fprintf(stderr, "activation result is wrong\n");
            rc = 1;
        }
    }
    std::error_code ec;
    std::uintmax_t size = 0;
    for (const auto& e : fs::directory_iterator(dir, ec)) size += e.file_size(ec);
    std::printf("database files %.1f MB\n", size / 1e6);
    if (keep) std::printf("kept %s\n", dir.c_str());
    else fs::remove_all(dir, ec);
    return rc;
}
