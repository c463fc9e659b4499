#include "support/cli_site.h"

#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>

using namespace Poco::Data::Keywords;

namespace smtest {

CliSite::CliSite(const std::vector<std::string>& renewals, const std::string& extraConfig) {
    for (const char* sub : {"", "/new", "/cur", "/tmp"})
        REQUIRE(runProgram("/bin/mkdir", {"-p", inbox + sub}).exitCode == 0);
    conf = writeTestConfig(dir, "maildir:" + spool, "inbound.support.url = maildir:" + inbox + "\n" + extraConfig);
    run({"import-partners", writeSamplePartners(dir)});
    std::string rows = "partner_id,benefit,renewal_date\n";
    for (const auto& r : renewals) rows += r + "," + today() + "\n";
    const std::string file = dir.file("renewals.csv");
    writeFile(file, rows);
    run({"import-renewals", file});
    run({"activate"});
    db = sm::store::Database::open(testDatabaseUrl(dir));
}

RunResult CliSite::run(const std::vector<std::string>& args, int expectedExit) {
    std::vector<std::string> a = {"--config", conf};
    a.insert(a.end(), args.begin(), args.end());
    auto r = runSupportmail(a);
    INFO(args[0] << ": " << r.out << r.err);
    REQUIRE(r.exitCode == expectedExit);
    return r;
}

void CliSite::putInInbox(const std::string& raw) {
    ++mails_;
    writeFile(inbox + "/new/17000000" + std::to_string(10 + mails_) + ".M" + std::to_string(mails_) + "P1.test", raw);
}

std::int64_t CliSite::scalar(const std::string& sql) {
    std::int64_t v = 0;
    db->session() << sql, into(v), now;
    return v;
}

std::string CliSite::text(const std::string& sql) {
    std::string v;
    db->session() << sql, into(v), now;
    return v;
}

}  // namespace smtest
