// What the CLI tests run the real binary against: the project's configuration with
// the test store (SQLite in a temporary directory, or the test PostgreSQL schema), a
// spool Maildir as the transport and a Maildir inbox as inbound.support, the sample
// partners imported and the given renewals imported and activated (their ID mails
// queued, not sent). Each test file adds its own mails and queries on top.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/database.h"
#include "support/test_support.h"

namespace smtest {

struct CliSite {
    TempDir dir;
    std::string spool = dir.file("spool");
    std::string inbox = dir.file("inbox");
    std::string conf;
    std::unique_ptr<sm::store::Database> db;

    /// renewals: CSV rows under partner_id,benefit,renewal_date ("4648141,gold"; today's
    /// date is added); extraConfig: lines on top of the project's configuration.
    explicit CliSite(const std::vector<std::string>& renewals, const std::string& extraConfig = "");

    /// Runs supportmail --config conf ARGS; REQUIREs the exit code.
    RunResult run(const std::vector<std::string>& args, int expectedExit = 0);

    /// Puts a raw mail into the inbox's new/ under a name of its own (fetch reads it).
    void putInInbox(const std::string& raw);

    std::int64_t scalar(const std::string& sql);
    std::string text(const std::string& sql);

private:
    int mails_ = 0;
};

}  // namespace smtest
