// The log and the progress bar (issue 5): redaction, the plain and JSON line
// formats with the run id, the logging.* configuration, the bar's rendering, and
// the binary as cron and a terminal see it (quiet without a terminal; a bar with
// rate and ETA on one; JSON lines in a file, each naming its run, no ID in clear).
#include <catch2/catch.hpp>

#include <set>

#include <Poco/Data/Session.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Message.h>
#include <Poco/StringTokenizer.h>

#include "app/config.h"
#include "app/logging.h"
#include "app/progress.h"
#include "store/database.h"
#include "support/test_support.h"

using namespace Poco::Data::Keywords;
using sm::app::redact;
using sm::app::TerminalProgress;

namespace {

Poco::JSON::Object::Ptr parseJson(const std::string& line) {
    Poco::JSON::Parser parser;
    return parser.parse(line).extract<Poco::JSON::Object::Ptr>();
}

std::string formatted(bool json, const std::string& text, Poco::Message::Priority prio = Poco::Message::PRIO_WARNING) {
    sm::app::LogFormatter f(json, true);
    Poco::Message msg("supportmail", text, prio);
    std::string out;
    f.format(msg, out);
    return out;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    Poco::StringTokenizer tok(text, "\n", Poco::StringTokenizer::TOK_IGNORE_EMPTY);
    for (const auto& l : tok) out.push_back(l);
    return out;
}

}  // namespace

TEST_CASE("redact masks Access IDs, Contract IDs and registered secrets", "[logging]") {
    CHECK(redact("renewal 12 activated as 26 Gold-4648141-unk (0037xxxxxx)") ==
          "renewal 12 activated as 26 Gold-4648141-unk (0037xxxxxx)");
    // Ten digits alone are an Access ID; a partner id (7 digits) or a longer number is not.
    CHECK(redact("access 0037123456 for 4648141") == "access 0037xxxxxx for 4648141");
    CHECK(redact("uid 12345678901 stays") == "uid 12345678901 stays");
    CHECK(redact("key=0037123456,next") == "key=0037xxxxxx,next");
    CHECK(redact("word0037123456 stays") == "word0037123456 stays");
    const std::string masked = redact("contract C-ABCDEFGH23 here");
    CHECK(masked.find("C-ABCDEFGH23") == std::string::npos);
    CHECK(masked.rfind("contract C-", 0) == 0);
    CHECK(masked.find(" here") != std::string::npos);
    // A Message-ID's base36 parts are left alone.
    CHECK(redact("sent <hoicc0drlp.kmpwkvnztiinb4m5llojvatl3y@example.test>") ==
          "sent <hoicc0drlp.kmpwkvnztiinb4m5llojvatl3y@example.test>");

    sm::app::addSecret("s3cret-Passw0rd");
    sm::app::addSecret("");  // ignored, or every string would be masked
    CHECK(redact("login failed for alice with s3cret-Passw0rd!") == "login failed for alice with [secret]!");
    CHECK(redact("nothing to hide") == "nothing to hide");
}

TEST_CASE("a JSON log line is one object with the run id, job, level and message", "[logging]") {
    sm::app::setCurrentRun(42, "deliver");
    const std::string line = formatted(true, "will retry <a.b@example.test> to x@example.test \"quoted\"\tand 0037123456");
    sm::app::clearCurrentRun();
    CHECK(line.find('\n') == std::string::npos);
    auto obj = parseJson(line);
    CHECK(obj->getValue<std::int64_t>("run_id") == 42);
    CHECK(obj->getValue<std::string>("job") == "deliver");
    CHECK(obj->getValue<std::string>("level") == "warning");
    CHECK(obj->getValue<std::string>("logger") == "supportmail");
    CHECK(obj->getValue<std::string>("message") ==
          "will retry <a.b@example.test> to x@example.test \"quoted\"\tand 0037xxxxxx");
    CHECK(obj->getValue<std::string>("time").size() == std::string("2026-11-26T03:11:24.123Z").size());
    CHECK(obj->has("pid"));

    // Outside a run: run_id and job are null.
    auto outside = parseJson(formatted(true, "serve: started", Poco::Message::PRIO_NOTICE));
    CHECK(outside->isNull("run_id"));
    CHECK(outside->isNull("job"));
    CHECK(outside->getValue<std::string>("level") == "notice");

    // Non-ASCII text stays valid JSON.
    auto vi = parseJson(formatted(true, "Yêu cầu hỗ trợ: Đà Nẵng"));
    CHECK(vi->getValue<std::string>("message") == "Yêu cầu hỗ trợ: Đà Nẵng");
}

TEST_CASE("a plain log line names the run and the job", "[logging]") {
    sm::app::setCurrentRun(0, "activate");
    const std::string before = formatted(false, "lease taken");
    sm::app::setCurrentRun(7, "activate");
    const std::string during = formatted(false, "activated renewal 3", Poco::Message::PRIO_INFORMATION);
    sm::app::clearCurrentRun();
    const std::string after = formatted(false, "serve: started", Poco::Message::PRIO_NOTICE);
    CHECK(before.find("run=- activate warning supportmail: lease taken") != std::string::npos);
    CHECK(during.find("run=7 activate information supportmail: activated renewal 3") != std::string::npos);
    CHECK(after.find("run=- - notice supportmail: serve: started") != std::string::npos);
    CHECK(during.find("Z [") == std::string("2026-11-26T03:11:24.123").size());
}

TEST_CASE("logging.* settings are checked with file and line", "[logging][config]") {
    smtest::TempDir dir;
    const std::string base = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"));
    auto withExtra = [&](const std::string& extra) {
        smtest::writeFile(base, smtest::readFile(base) + extra);
        return base;
    };
    SECTION("defaults: plain lines on stderr at notice") {
        auto s = sm::app::loadSettings(base);
        CHECK(s.log.channel == "stderr");
        CHECK(s.log.format == "plain");
        CHECK(s.log.level == "notice");
    }
    SECTION("a file channel resolves its path against the configuration's directory") {
        auto s = sm::app::loadSettings(withExtra("logging.channel = file\nlogging.file = log/sm.log\n"
                                                 "logging.format = json\nlogging.file_rotate = 10 M\n"
                                                 "logging.file_keep = 5\n"));
        CHECK(s.log.file == dir.file("log/sm.log"));
        CHECK(s.log.format == "json");
        CHECK(s.log.rotate == "10 M");
        CHECK(s.log.keep == 5);
    }
    SECTION("a file channel without a file") {
        withExtra("logging.channel = file\n");
        CHECK_THROWS_WITH(sm::app::loadSettings(base), Catch::Contains("logging.channel: 'file' needs logging.file"));
    }
    SECTION("an unknown channel, format, rotation or facility") {
        CHECK_THROWS_WITH(sm::app::loadSettings(withExtra("logging.channel = journald\n")),
                          Catch::Contains("'journald' is not one of stderr, file, syslog"));
    }
    SECTION("an unknown format") {
        CHECK_THROWS_WITH(sm::app::loadSettings(withExtra("logging.format = xml\n")),
                          Catch::Contains(":") && Catch::Contains("logging.format: 'xml' is not one of plain, json"));
    }
    SECTION("a rotation POCO does not know") {
        CHECK_THROWS_WITH(sm::app::loadSettings(withExtra("logging.file_rotate = hourly-ish\n")),
                          Catch::Contains("logging.file_rotate"));
    }
    SECTION("a syslog facility that does not exist") {
        CHECK_THROWS_WITH(sm::app::loadSettings(withExtra("logging.syslog_facility = kernel\n")),
                          Catch::Contains("logging.syslog_facility: 'kernel'"));
    }
}

TEST_CASE("the progress line shows bar, percentage, counts, rate and ETA", "[progress]") {
    // 250 of 1000 in 5 s: 50/s, 750 to go → 15 s.
    const std::string line = TerminalProgress::render("activate", 250, 1000, 5.0, 80);
    CHECK(line.size() <= 80);
    CHECK(line.rfind("activate [", 0) == 0);
    CHECK(line.find(" 25%") != std::string::npos);
    CHECK(line.find("250/1000") != std::string::npos);
    CHECK(line.find("50/s") != std::string::npos);
    CHECK(line.find("ETA 0:15") != std::string::npos);
    const auto open = line.find('['), close = line.find(']');
    const std::string bar = line.substr(open + 1, close - open - 1);
    const auto hashes = std::count(bar.begin(), bar.end(), '#');
    CHECK(hashes == static_cast<long>(bar.size()) / 4);

    const std::string done = TerminalProgress::render("deliver", 1000, 1000, 62.0, 80);
    CHECK(done.find("100%") != std::string::npos);
    CHECK(done.find("in 1:02") != std::string::npos);
    CHECK(done.find('.') == std::string::npos);  // a full bar

    const std::string start = TerminalProgress::render("process", 0, 10, 0.0, 80);
    CHECK(start.find("ETA --:--") != std::string::npos);

    const std::string unknown = TerminalProgress::render("fetch", 40, -1, 2.0, 80);
    CHECK(unknown == "fetch  40  20/s");

    // A narrow terminal drops the bar, never the numbers.
    const std::string narrow = TerminalProgress::render("import-renewals", 5, 10, 1.0, 50);
    CHECK(narrow.size() <= 50);
    CHECK(narrow.find('[') == std::string::npos);
    CHECK(narrow.find("5/10") != std::string::npos);

    // Counts a caller should never give still render, within the width.
    CHECK(TerminalProgress::render("x", -5, 10, 1.0, 80).find("  0%  0/10") != std::string::npos);
    const std::string huge = TerminalProgress::render("x", 4'000'000'000'000'000'000, 8'000'000'000'000'000'000, 1.0, 200);
    CHECK(huge.find(" 50%") != std::string::npos);
    CHECK(TerminalProgress::render("x", 1, 1'000'000'000, 1e6, 80).find("ETA 2376:00:00") != std::string::npos);

    CHECK(TerminalProgress::formatDuration(4) == "0:04");
    CHECK(TerminalProgress::formatDuration(750) == "12:30");
    CHECK(TerminalProgress::formatDuration(3723) == "1:02:03");
}

TEST_CASE("a disabled progress bar writes nothing and counts", "[progress]") {
    TerminalProgress p("activate", false);
    p.begin(10);
    p.advance(3);
    p.advance();
    CHECK(p.done() == 4);
    CHECK_FALSE(p.enabled());
}

namespace {

struct CliFixture {
    smtest::TempDir dir;
    std::string conf;
    std::string renewals;
    explicit CliFixture(const std::string& extra = "") {
        conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"), extra);
        renewals = dir.file("renewals.csv");
        const std::string today = smtest::today();
        smtest::writeFile(renewals, "partner_id,benefit,renewal_date,location_id\n4648141,gold," + today +
                                        ",\n4648141,scs," + today + ",\n5102233,silver," + today + ",\n");
        REQUIRE(smtest::runSupportmail({"--config", conf, "import-partners", smtest::writeSamplePartners(dir)})
                    .exitCode == 0);
        REQUIRE(smtest::runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
    }
};

std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace

TEST_CASE("without a terminal a run is quiet: a summary line, nothing on stderr, --quiet prints nothing",
          "[progress][cli]") {
    CliFixture f;
    auto act = smtest::runSupportmail({"--config", f.conf, "activate"});
    REQUIRE(act.exitCode == 0);
    CHECK(act.err.empty());
    CHECK(lines(act.out).size() == 1);
    CHECK(act.out.find("activate: 3 activated") == 0);

    auto quiet = smtest::runSupportmail({"--quiet", "--config", f.conf, "deliver"});
    REQUIRE(quiet.exitCode == 0);
    CHECK(quiet.out.empty());
    CHECK(quiet.err.empty());
    CHECK(smtest::listFiles(f.dir.file("spool") + "/new").size() == 3);  // it did its work

    // Trouble still reaches stderr with --quiet (cron mails it), and the exit code says so.
    auto bad = smtest::runSupportmail({"-q", "--config", f.conf, "import-renewals", f.dir.file("missing.csv")});
    CHECK(bad.exitCode == 66);
    CHECK(bad.out.empty());
    CHECK(bad.err.find("missing.csv: no such file") != std::string::npos);
}

TEST_CASE("on a terminal activate and deliver draw a bar with rate and ETA, then clear it", "[progress][cli]") {
    CliFixture f;
    // script(1) gives the command a pseudo-terminal and copies what it writes.
    auto onTty = [&](const std::string& args) {
        const std::string cmd = shellQuote(SUPPORTMAIL_BINARY) + " --config " + shellQuote(f.conf) + " " + args;
        return smtest::runProgram("/usr/bin/script", {"-qfec", cmd, "/dev/null"}, {"TERM=xterm"});
    };
    auto act = onTty("activate");
    REQUIRE(act.exitCode == 0);
    CHECK(act.out.find("activate [") != std::string::npos);
    CHECK(act.out.find("0/3") != std::string::npos);
    CHECK(act.out.find("100%  3/3") != std::string::npos);
    CHECK(act.out.find("/s") != std::string::npos);
    CHECK(act.out.find("ETA") != std::string::npos);
    CHECK(act.out.find("\r\x1b[K") != std::string::npos);  // cleared before the summary
    CHECK(act.out.find("activate: 3 activated") != std::string::npos);

    auto del = onTty("deliver");
    REQUIRE(del.exitCode == 0);
    CHECK(del.out.find("deliver [") != std::string::npos);
    CHECK(del.out.find("3/3") != std::string::npos);
    CHECK(del.out.find("deliver: 3 sent") != std::string::npos);

    // --quiet on a terminal: no bar either.
    auto quiet = onTty("--quiet deliver");
    CHECK(quiet.exitCode == 0);
    CHECK(quiet.out.find("deliver [") == std::string::npos);
}

TEST_CASE("JSON lines in a log file: every job line names its run and no ID or password is in clear", "[logging][cli]") {
    CliFixture f;
    const std::string logFile = f.dir.file("supportmail.log");
    smtest::writeFile(f.conf, smtest::readFile(f.conf) + "logging.channel = file\nlogging.file = " + logFile +
                                  "\nlogging.format = json\nlogging.level = debug\n");
    auto act = smtest::runSupportmail({"--config", f.conf, "activate"});
    REQUIRE(act.exitCode == 0);
    CHECK(act.err.empty());  // the log went to the file
    auto del = smtest::runSupportmail({"--config", f.conf, "deliver"}, {"SUPPORTMAIL_SMTP_PASSWORD=Hunter2-Secret!"});
    REQUIRE(del.exitCode == 0);

    auto db = sm::store::Database::open("sqlite:" + f.dir.file("supportmail.db"));
    std::map<std::string, std::int64_t> runIds;
    {
        std::vector<std::string> jobs;
        std::vector<std::int64_t> ids;
        db->session() << "SELECT job, id FROM job_runs WHERE job IN ('activate', 'deliver')", into(jobs), into(ids), now;
        REQUIRE(jobs.size() == 2);
        for (std::size_t i = 0; i < jobs.size(); ++i) runIds[jobs[i]] = ids[i];
    }
    std::vector<std::string> accessIds, contractIds;
    db->session() << "SELECT access_id, contract_id FROM contracts", into(accessIds), into(contractIds), now;
    REQUIRE(accessIds.size() == 3);

    const std::string text = smtest::readFile(logFile);
    const auto all = lines(text);
    REQUIRE(all.size() >= 3 + 3 + 2);  // an "activated" and a "sent" line per contract, a finish line per run
    std::set<std::string> jobsSeen;
    int activatedLines = 0, sentLines = 0;
    for (const auto& line : all) {
        auto obj = parseJson(line);  // throws (and fails) on anything but one JSON object
        REQUIRE_FALSE(obj->isNull("job"));
        const std::string job = obj->getValue<std::string>("job");
        jobsSeen.insert(job);
        const std::string message = obj->getValue<std::string>("message");
        // Lines of the run itself carry its id; only the lease's own lines around it may not.
        if (message.rfind("lease for", 0) != 0) {
            INFO(line);
            REQUIRE_FALSE(obj->isNull("run_id"));
            CHECK(obj->getValue<std::int64_t>("run_id") == runIds.at(job));
        }
        activatedLines += message.rfind("activated renewal", 0) == 0;
        sentLines += message.rfind("sent <", 0) == 0;
    }
    CHECK(jobsSeen == std::set<std::string>{"activate", "deliver"});
    CHECK(activatedLines == 3);
    CHECK(sentLines == 3);
    CHECK(text.find("activate finished: ok") != std::string::npos);
    CHECK(text.find("xxxxxx") != std::string::npos);  // the masked display names
    for (std::size_t i = 0; i < accessIds.size(); ++i) {
        CHECK(text.find(accessIds[i]) == std::string::npos);
        CHECK(text.find(contractIds[i]) == std::string::npos);
    }
    CHECK(text.find("Hunter2-Secret!") == std::string::npos);
}

TEST_CASE("a log file that cannot be opened is a configuration error (78) naming it", "[logging][cli]") {
    smtest::TempDir dir;
    const std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"),
                                                     "logging.channel = file\nlogging.file = " +
                                                         dir.file("no/such/dir/sm.log") + "\n");
    auto r = smtest::runSupportmail({"--config", conf, "deliver"});
    CHECK(r.exitCode == 78);
    CHECK(r.err.find("logging.file: cannot open '" + dir.file("no/such/dir/sm.log") + "'") != std::string::npos);
}
