// One command-line style (issue 14, item 4), through the real binary: help wrapped
// once by the formatter, one form for errors ("supportmail COMMAND: what: why"),
// global options after the command, exit 64 for usage and 66 for an input file
// that cannot be read, and a failed job's reason in its log and job_runs row with no
// talk of exceptions.
#include <catch2/catch.hpp>

#include <cctype>
#include <regex>
#include <sstream>

#include <Poco/Data/Session.h>

#include "store/database.h"
#include "support/test_support.h"

using namespace Poco::Data::Keywords;
using smtest::runSupportmail;

namespace {

struct Cli {
    smtest::TempDir dir;
    std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"));
};

std::vector<std::string> commandNames() {
    auto help = runSupportmail({"--help"});
    REQUIRE(help.exitCode == 0);
    std::vector<std::string> names;
    std::istringstream in(help.out.substr(help.out.find("\nCommands:\n") + 11));
    std::string line;
    while (std::getline(in, line) && line.rfind("  ", 0) == 0) {
        std::istringstream words(line);
        std::string name;
        words >> name;
        names.push_back(name);
    }
    return names;
}

}  // namespace

TEST_CASE("every command's help is wrapped once: no line too long, no paragraph broken short", "[cli][style]") {
    const auto names = commandNames();
    REQUIRE(names.size() >= 15);
    for (const auto& name : names) {
        CAPTURE(name);
        auto help = runSupportmail({name, "--help"});
        CHECK(help.exitCode == 0);
        std::istringstream in(help.out);
        std::string line, previous;
        while (std::getline(in, line)) {
            CAPTURE(line);
            CHECK(line.size() <= 80);
            // A hard line break wrapped again leaves a short line whose sentence goes
            // on in lower case on the next one.
            if (!previous.empty() && previous.size() < 40 && previous.find("  ") != 0 && !line.empty() &&
                std::islower(static_cast<unsigned char>(line[0])))
                FAIL_CHECK("short line inside a paragraph: '" << previous << "' then '" << line << "'");
            previous = line;
        }
    }
}

TEST_CASE("the daemon options speak the style of the others", "[cli][style]") {
    auto help = runSupportmail({"--help"});
    CHECK(help.out.find("Run application as a daemon") == std::string::npos);
    CHECK(help.out.find("--daemon               detach and run in the background") != std::string::npos);
    CHECK(help.out.find("--pidfile=path         write the daemon's process id to this file") != std::string::npos);
}

TEST_CASE("one form for option errors, before and after the command", "[cli][style]") {
    auto before = runSupportmail({"--bogus"});
    auto after = runSupportmail({"activate", "--bogus"});
    CHECK(before.exitCode == 64);
    CHECK(after.exitCode == 64);
    CHECK(before.err == "supportmail: --bogus: unknown option (see supportmail --help)\n");
    CHECK(after.err == "supportmail activate: --bogus: unknown option (see supportmail activate --help)\n");
    auto value = runSupportmail({"deliver", "--limit"});
    CHECK(value.exitCode == 64);
    CHECK(value.err == "supportmail deliver: --limit: needs a value (see supportmail deliver --help)\n");
    auto flag = runSupportmail({"activate", "--dry-run=yes"});
    CHECK(flag.exitCode == 64);
    CHECK(flag.err.find("supportmail activate: --dry-run: takes no value") == 0);
    auto unknown = runSupportmail({"frobnicate"});
    CHECK(unknown.exitCode == 64);
    CHECK(unknown.err.find("supportmail: frobnicate: unknown command") == 0);
}

TEST_CASE("a config option without a file is a usage error, and global options work after the command", "[cli][style]") {
    Cli c;
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--config"}, {"--config="}, {"status", "--config"},
                                                 {"-c", "--verbose", "status"}}) {
        auto r = runSupportmail(args);
        CAPTURE(args.front(), r.err);
        CHECK(r.exitCode == 64);
        CHECK(r.err.find(": needs a file") != std::string::npos);
    }
    auto after = runSupportmail({"status", "--json", "--config", c.conf});
    CHECK(after.exitCode == 0);
    CHECK(after.out.find("\"inbound\"") != std::string::npos);
    auto quietAfter = runSupportmail({"status", "--config=" + c.conf, "--quiet"});
    CHECK(quietAfter.exitCode == 0);
    CHECK(quietAfter.out.empty());
    // --help after the command is the command's help.
    CHECK(runSupportmail({"status", "--help"}).out.find("supportmail status") != std::string::npos);
}

TEST_CASE("an input file that is a directory or missing exits 66 and says so", "[cli][style]") {
    Cli c;
    for (const char* cmd : {"inspect", "import-partners", "import-renewals"}) {
        CAPTURE(cmd);
        auto dir = runSupportmail({"--config", c.conf, cmd, c.dir.path()});
        CHECK(dir.exitCode == 66);
        CHECK(dir.err == std::string("supportmail ") + cmd + ": " + c.dir.path() + ": is a directory, not a file\n");
        auto missing = runSupportmail({"--config", c.conf, cmd, c.dir.file("nothing.here")});
        CHECK(missing.exitCode == 66);
        CHECK(missing.err.find(c.dir.file("nothing.here") + ": no such file") != std::string::npos);
    }
}

TEST_CASE("deliver --limit takes a whole number of 1 or more", "[cli][style]") {
    Cli c;
    for (const char* bad : {"--limit=-5", "--limit=0", "--limit=5x", "--limit=many"}) {
        CAPTURE(bad);
        auto r = runSupportmail({"--config", c.conf, "deliver", bad});
        CHECK(r.exitCode == 64);
        CHECK(r.err.find("supportmail deliver: --limit '") == 0);
        CHECK(r.err.find("expected a whole number of mails, 1 or more") != std::string::npos);
    }
    CHECK(runSupportmail({"--config", c.conf, "deliver", "--limit=3"}).exitCode == 0);
}

TEST_CASE("a failed job run records and logs its reason, never 'exception'", "[cli][style]") {
    Cli c;
    std::string empty = c.dir.file("no-templates");
    REQUIRE(smtest::runProgram("/bin/mkdir", {"-p", empty}).exitCode == 0);
    const std::string log = c.dir.file("supportmail.log");
    std::string broken = c.dir.file("broken.properties");
    smtest::writeFile(broken, std::regex_replace(smtest::readFile(c.conf), std::regex("\ntemplates\\.dir = [^\n]*\n"),
                                                 "\ntemplates.dir = " + empty + "\nlogging.channel = file\nlogging.file = " + log + "\n"));
    REQUIRE(runSupportmail({"--config", broken, "import-partners", smtest::writeSamplePartners(c.dir)}).exitCode == 0);
    std::string renewals = c.dir.file("renewals.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + smtest::today() + "\n");
    REQUIRE(runSupportmail({"--config", broken, "import-renewals", renewals}).exitCode == 0);
    auto r = runSupportmail({"--config", broken, "activate"});
    CHECK(r.exitCode == 78);
    CHECK(r.err.find("supportmail activate: template error: ") == 0);
    auto db = sm::store::Database::open("sqlite:" + c.dir.file("supportmail.db"));
    std::string outcome, error;
    db->session() << "SELECT outcome, error FROM job_runs WHERE job = 'activate'", into(outcome), into(error), now;
    CHECK(outcome == "failed");
    CHECK(error.find("template error: ") == 0);
    const std::string text = smtest::readFile(log);
    CHECK(text.find("activate failed: template error: ") != std::string::npos);
    CHECK(text.find("xception") == std::string::npos);
}
