// The supportmail binary as an administrator uses it, with the embedded default
// (SQLite + Maildir spool): usage and exit codes, bad files and bad configuration,
// the whole import → activate → deliver run, and no IDs in the output or logs.
#include <catch2/catch.hpp>

#include "app/config.h"
#include "app/logging.h"

#include <unistd.h>

#include <regex>

#include <Poco/Data/Session.h>

#include "store/database.h"
#include "support/test_support.h"

using smtest::runSupportmail;
using namespace Poco::Data::Keywords;

namespace {
using smtest::today;
}  // namespace

TEST_CASE("help and usage errors", "[cli]") {
    auto help = runSupportmail({"--help"});
    CHECK(help.exitCode == 0);
    CHECK(help.out.find("import-partners") != std::string::npos);
    CHECK(help.out.find("78 configuration error") != std::string::npos);

    auto cmdHelp = runSupportmail({"activate", "--help"});
    CHECK(cmdHelp.exitCode == 0);
    CHECK(cmdHelp.out.find("--dry-run") != std::string::npos);

    CHECK(runSupportmail({}).exitCode == 64);
    auto unknown = runSupportmail({"frobnicate"});
    CHECK(unknown.exitCode == 64);
    CHECK(unknown.err.find("unknown command 'frobnicate'") != std::string::npos);
    auto badOpt = runSupportmail({"activate", "--bogus"});
    CHECK(badOpt.exitCode == 64);
    auto missingArg = runSupportmail({"import-partners"});
    CHECK(missingArg.exitCode == 64);
    CHECK(runSupportmail({"--nope", "activate"}).exitCode == 64);
}

TEST_CASE("a broken configuration names file, line and key and exits 78", "[cli][config]") {
    smtest::TempDir dir;
    std::string good = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"));

    SECTION("a line that is not key = value") {
        std::string text = smtest::readFile(good) + "this line is broken\n";
        smtest::writeFile(good, text);
        auto r = runSupportmail({"--config", good, "activate"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find(good + ":") != std::string::npos);
        CHECK(r.err.find("expected 'key = value'") != std::string::npos);
    }
    SECTION("a bad number, with its line") {
        smtest::writeFile(good, smtest::readFile(good) + "delivery.batch = lots\n");
        auto r = runSupportmail({"--config", good, "deliver"});
        CHECK(r.exitCode == 78);
        CHECK(std::regex_search(r.err, std::regex(":[0-9]+: delivery.batch: 'lots' is not a whole number")));
    }
    SECTION("an unknown key") {
        smtest::writeFile(good, smtest::readFile(good) + "delivery.bach = 5\n");
        auto r = runSupportmail({"--config", good, "deliver"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find("unknown key 'delivery.bach'") != std::string::npos);
    }
    SECTION("a missing file") {
        auto r = runSupportmail({"--config", dir.file("nope.properties"), "activate"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find("no such configuration file") != std::string::npos);
    }
    SECTION("a password file readable by others is refused") {
        smtest::writeFile(dir.file("pw"), "secret-pw\n");
        smtest::runProgram("/bin/chmod", {"644", dir.file("pw")});
        smtest::writeFile(good, smtest::readFile(good) + "transport.username = alice\ntransport.password_file = " +
                                    dir.file("pw") + "\n");
        auto r = runSupportmail({"--config", good, "deliver"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find("readable by group or others") != std::string::npos);
        CHECK(r.err.find("secret-pw") == std::string::npos);
    }
    // Issue 11: opened once, checked on the descriptor: a regular file of ours, 0600.
    SECTION("a password file that is not a regular file is refused") {
        REQUIRE(smtest::runProgram("/bin/mkdir", {"-p", dir.file("pwdir")}).exitCode == 0);
        smtest::writeFile(good, smtest::readFile(good) + "transport.username = alice\ntransport.password_file = " +
                                    dir.file("pwdir") + "\n");
        auto r = runSupportmail({"--config", good, "deliver"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find("transport.password_file: '" + dir.file("pwdir") + "' is not a regular file") !=
              std::string::npos);
    }
    SECTION("a password file owned by another user is refused") {
        // As root: a file given to nobody; otherwise a file root owns.
        std::string pw = "/etc/hostname";
        if (::geteuid() == 0) {
            pw = dir.file("pw");
            smtest::writeFile(pw, "secret-pw\n");
            smtest::runProgram("/bin/chmod", {"600", pw});
            REQUIRE(::chown(pw.c_str(), 65534, 65534) == 0);
        }
        smtest::writeFile(good, smtest::readFile(good) + "transport.username = alice\ntransport.password_file = " +
                                    pw + "\n");
        auto r = runSupportmail({"--config", good, "deliver"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find("transport.password_file: '" + pw + "' is owned by uid") != std::string::npos);
        CHECK(r.err.find("secret-pw") == std::string::npos);
    }
    SECTION("a missing password file names the file and the cause") {
        smtest::writeFile(good, smtest::readFile(good) + "transport.username = alice\ntransport.password_file = " +
                                    dir.file("nope") + "\n");
        auto r = runSupportmail({"--config", good, "deliver"});
        CHECK(r.exitCode == 78);
        CHECK(r.err.find("cannot open '" + dir.file("nope") + "': No such file or directory") != std::string::npos);
    }
}

TEST_CASE("every password of the configuration is masked in logs, PostgreSQL's included", "[cli][trust]") {
    smtest::TempDir dir;
    const std::string pw = dir.file("pw");
    smtest::writeFile(pw, "smtp-pw-123\n");
    smtest::runProgram("/bin/chmod", {"600", pw});
    std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"),
                                               "transport.username = alice\ntransport.password_file = " + pw + "\n");
    // The same file with a PostgreSQL URL (loading it connects to nothing).
    std::string text = smtest::readFile(conf);
    const auto at = text.find("database.url");
    REQUIRE(at != std::string::npos);
    text.replace(at, text.find('\n', at) - at,
                 "database.url = postgresql:host=127.0.0.1 port=1 user=sm password='pg pw 42' dbname=sm");
    smtest::writeFile(conf, text);
    const auto s = sm::app::loadSettings(conf);
    CHECK(s.transport.password == "smtp-pw-123");
    const std::string line = sm::app::redact("connect postgresql:password='pg pw 42' as alice/smtp-pw-123");
    CHECK(line.find("pg pw 42") == std::string::npos);
    CHECK(line.find("smtp-pw-123") == std::string::npos);
    CHECK(line.find("[secret]") != std::string::npos);
}

TEST_CASE("a malformed CSV reports each bad line and loads nothing", "[cli][import]") {
    smtest::TempDir dir;
    std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"));
    std::string csv = dir.file("partners.csv");
    smtest::writeFile(csv,
                      "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,"
                      "contact_country,contact_language\n"
                      "4648141,Contoso,gold,DE,alice@example.test,Alice,hq_primary,DE,en\n"
                      "12x,Bad Id,gold,DE,x@example.test,X,member,DE,en\n"
                      "5102233,Song Hong,platinum,VN,erin@example.test,Erin,hq_primary,VN,vi\n"
                      "7001234,Fabrikam,silver,US,not-an-address,Grace,hq_primary,US,en\n"
                      "7001235,Too,few,fields\n");
    auto r = runSupportmail({"--config", conf, "import-partners", csv});
    CHECK(r.exitCode == 65);
    CHECK(r.err.find("line 3, partner_id: '12x' is not a partner ID") != std::string::npos);
    CHECK(r.err.find("line 4, membership: 'platinum' is not one of") != std::string::npos);
    CHECK(r.err.find("line 5, contact_email: 'not-an-address' is not an email address") != std::string::npos);
    CHECK(r.err.find("line 6: expected 9 fields, found 4") != std::string::npos);
    CHECK(r.err.find("nothing was loaded") != std::string::npos);

    // Nothing half-loaded: the good line 2 is not there either.
    std::string renewals = dir.file("renewals.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + today() + "\n");
    auto rr = runSupportmail({"--config", conf, "import-renewals", renewals});
    CHECK(rr.exitCode == 65);
    CHECK(rr.err.find("partner 4648141 is unknown") != std::string::npos);

    // Asked to skip bad lines, the good one loads.
    auto skip = runSupportmail({"--config", conf, "import-partners", "--skip-bad-lines", csv});
    CHECK(skip.exitCode == 0);
    CHECK(skip.out.find("1 new") != std::string::npos);
    CHECK(skip.out.find("4 bad lines skipped") != std::string::npos);
}

TEST_CASE("a CSV with a broken header or quote is refused as a whole", "[cli][import]") {
    smtest::TempDir dir;
    std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"));
    std::string csv = dir.file("r.csv");
    smtest::writeFile(csv, "partner_id,benefit\n1,gold\n");
    auto r = runSupportmail({"--config", conf, "import-renewals", csv});
    CHECK(r.exitCode == 65);
    CHECK(r.err.find("lacks the column 'renewal_date'") != std::string::npos);
    smtest::writeFile(csv, "partner_id,benefit,renewal_date\n1,\"gold,2026-01-01\n");
    r = runSupportmail({"--config", conf, "import-renewals", csv});
    CHECK(r.exitCode == 65);
    CHECK(r.err.find("unterminated quoted field") != std::string::npos);
    r = runSupportmail({"--config", conf, "import-renewals", dir.file("missing.csv")});
    CHECK(r.exitCode == 66);
    CHECK(r.err.find("no such file") != std::string::npos);
}

TEST_CASE("import twice changes nothing, import → activate → deliver fills the spool", "[cli][e2e-spool]") {
    smtest::TempDir dir;
    std::string spool = dir.file("spool");
    std::string conf = smtest::writeTestConfig(dir, "maildir:" + spool);
    std::string partners = smtest::writeSamplePartners(dir);
    std::string renewals = dir.file("renewals.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date,location_id\n4648141,gold," + today() +
                                    ",\n5102233,silver," + today() + ",\n7001234,action_pack," + today() + ",\n");

    auto p1 = runSupportmail({"--config", conf, "import-partners", partners});
    REQUIRE(p1.exitCode == 0);
    CHECK(p1.out.find("3 new") != std::string::npos);
    auto p2 = runSupportmail({"--config", conf, "import-partners", partners});
    REQUIRE(p2.exitCode == 0);
    CHECK(p2.out.find("0 new, 0 updated, 3 unchanged") != std::string::npos);
    CHECK(p2.out.find("contacts") == std::string::npos);  // no contact changed

    REQUIRE(runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
    auto r2 = runSupportmail({"--config", conf, "import-renewals", renewals});
    REQUIRE(r2.exitCode == 0);
    CHECK(r2.out.find("0 new, 0 updated, 3 unchanged") != std::string::npos);

    auto dry = runSupportmail({"--config", conf, "activate", "--dry-run"});
    CHECK(dry.exitCode == 0);
    CHECK(dry.out.find("would activate 2") != std::string::npos);

    auto act = runSupportmail({"--verbose", "--config", conf, "activate"});
    REQUIRE(act.exitCode == 0);
    CHECK(act.out.find("2 activated, 1 action pack waiting") != std::string::npos);
    auto again = runSupportmail({"--config", conf, "activate"});
    CHECK(again.out.find("0 activated") != std::string::npos);

    auto del = runSupportmail({"--verbose", "--config", conf, "deliver"});
    REQUIRE(del.exitCode == 0);
    CHECK(del.out.find("2 sent") != std::string::npos);
    auto files = smtest::listFiles(spool + "/new");
    REQUIRE(files.size() == 2);

    // Each spooled mail holds its IDs; neither the output nor the log shows them.
    for (const auto& f : files) {
        std::string mail = smtest::readFile(f);
        CHECK(mail.find("\r\n") != std::string::npos);
        CHECK(mail.find("Auto-Submitted: auto-generated") != std::string::npos);
    }
    std::string allOutput = act.out + act.err + del.out + del.err + dry.out + dry.err;
    CHECK(allOutput.find("xxxxxx") != std::string::npos);  // the masked display name is logged
    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    std::vector<std::string> accessIds, contractIds;
    db->session() << "SELECT access_id, contract_id FROM contracts", into(accessIds), into(contractIds), now;
    REQUIRE(accessIds.size() == 2);
    for (std::size_t i = 0; i < accessIds.size(); ++i) {
        CHECK(allOutput.find(accessIds[i]) == std::string::npos);
        CHECK(allOutput.find(contractIds[i]) == std::string::npos);
        bool inSomeMail = false;
        for (const auto& f : files) inSomeMail = inSomeMail || smtest::readFile(f).find(accessIds[i]) != std::string::npos;
        CHECK(inSomeMail);
    }

    auto del2 = runSupportmail({"--config", conf, "deliver"});
    CHECK(del2.out.find("0 sent") != std::string::npos);
    CHECK(smtest::listFiles(spool + "/new").size() == 2);
}
