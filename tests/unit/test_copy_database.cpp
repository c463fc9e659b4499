// copy-database (issue 12, item 5): a site's SQLite file copied into an empty
// PostgreSQL database, counts checked, safe to rerun; the copy works as the new store.
// PostgreSQL only (ctest's "unit-pg:" entries).
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>
#include <Poco/String.h>

#include "store/database.h"
#include "support/test_support.h"

using namespace Poco::Data::Keywords;

namespace {

std::int64_t scalar(sm::store::Database& db, const std::string& sql) {
    std::int64_t v = 0;
    db.session() << sql, into(v), now;
    return v;
}

std::string replaceDatabase(std::string conf, const std::string& url) {
    auto at = conf.find("database.url = ");
    REQUIRE(at != std::string::npos);
    conf.replace(at, conf.find('\n', at) - at, "database.url = " + url);
    return conf;
}

}  // namespace

TEST_CASE("copy-database copies a SQLite site into PostgreSQL, checks the counts and may run again",
          "[.pg][copy]") {
    smtest::TempDir dir;
    const std::string target = smtest::testDatabaseUrl(dir);  // a fresh, empty PostgreSQL database
    const std::string inbox = dir.file("inbox");
    for (const char* sub : {"/new", "/cur", "/tmp"})
        REQUIRE(smtest::runProgram("/bin/mkdir", {"-p", inbox + sub}).exitCode == 0);
    const std::string pgConf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"),
                                                       "inbound.support.url = maildir:" + inbox + "\n");
    const std::string sqliteUrl = "sqlite:" + dir.file("site.db");
    const std::string conf = dir.file("sqlite.properties");
    smtest::writeFile(conf, replaceDatabase(smtest::readFile(pgConf), sqliteUrl));
    auto run = [&](const std::string& config, const std::vector<std::string>& args, int expected = 0) {
        std::vector<std::string> a = {"--config", config};
        a.insert(a.end(), args.begin(), args.end());
        auto r = smtest::runSupportmail(a);
        INFO(args[0] << ": " << r.out << r.err);
        REQUIRE(r.exitCode == expected);
        return r;
    };

    // A site with history on SQLite: partners, contracts, ledger, sent mail, a case.
    run(conf, {"import-partners", smtest::writeSamplePartners(dir)});
    smtest::writeFile(dir.file("renewals.csv"), "partner_id,benefit,renewal_date\n4648141,gold," + smtest::today() +
                                                    "\n5102233,silver," + smtest::today() + "\n");
    run(conf, {"import-renewals", dir.file("renewals.csv")});
    run(conf, {"activate"});
    auto site = sm::store::Database::open(sqliteUrl);
    std::string access, contract;
    site->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(access),
        into(contract), now;
    smtest::writeFile(inbox + "/new/1700000001.M1P1.test",
                      "From: Alice <alice@partner.example>\r\nTo: support@example.test\r\nSubject: help\r\n"
                      "Message-ID: <copy.1@partner.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n"
                      "Access ID: " + access + "\r\nContract ID: " + contract +
                      "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
                      "Category: Cluster\r\nSeverity: B\r\nDescription: slow\r\n");
    run(conf, {"fetch"});
    run(conf, {"process"});
    run(conf, {"deliver"});
    REQUIRE(scalar(*site, "SELECT COUNT(*) FROM incidents") == 1);

    auto first = run(conf, {"copy-database", "--to", target});
    CHECK(first.out.find("counts match") != std::string::npos);
    CHECK(first.err.empty());
    auto pg = sm::store::Database::open(target);
    for (const char* table : {"partners", "contacts", "renewals", "contracts", "ledger", "outbox", "inbound",
                              "incidents", "case_messages", "job_runs"}) {
        INFO(table);
        CHECK(scalar(*pg, std::string("SELECT COUNT(*) FROM ") + table) ==
              scalar(*site, std::string("SELECT COUNT(*) FROM ") + table));
        CHECK(scalar(*pg, std::string("SELECT COUNT(*) FROM ") + table) > 0);
    }
    CHECK(scalar(*pg, "SELECT SUM(delta) FROM ledger") == scalar(*site, "SELECT SUM(delta) FROM ledger"));
    std::string siteRaw, pgSha;
    site->session() << "SELECT sha256 FROM inbound", into(siteRaw), now;
    pg->session() << "SELECT encode(sha256(raw), 'hex') FROM inbound_raw", into(pgSha), now;
    CHECK(pgSha == Poco::toLower(siteRaw));  // the raw mail, byte for byte

    // Again: nothing added, counts still match.
    auto again = run(conf, {"copy-database", "--to", target});
    CHECK(again.out.find(", 0 copied now; counts match") != std::string::npos);

    // The copy is the new store: new rows get fresh ids after the copied ones.
    smtest::writeFile(dir.file("more.csv"), "partner_id,benefit,renewal_date\n7001234,action_pack," +
                                                smtest::today() + "\n");
    run(pgConf, {"import-renewals", dir.file("more.csv")});
    run(pgConf, {"activate", "--partner", "7001234"});
    CHECK(scalar(*pg, "SELECT COUNT(*) FROM contracts") == 3);

    // A target that holds rows the source does not: refused, counts named, nothing copied.
    auto refused = run(conf, {"copy-database", "--to", target}, 65);
    CHECK(refused.err.find("rows in") != std::string::npos);
}
