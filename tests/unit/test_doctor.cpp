// doctor without servers: the spool transport and a Maildir inbound all pass; an
// unknown key and a broken template fail with exit 78 and say where.
#include <catch2/catch.hpp>

#include <filesystem>

#include "support/test_support.h"

namespace fs = std::filesystem;
using smtest::runSupportmail;

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

struct Setup {
    smtest::TempDir dir;
    std::string inbox = dir.file("inbox");
    std::string conf;
    explicit Setup(const std::string& extra = "") {
        for (const char* sub : {"/new", "/cur", "/tmp"}) fs::create_directories(inbox + sub);
        conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"),
                                       "inbound.support.url = maildir:" + inbox + "\n" + extra);
    }
};

}  // namespace

TEST_CASE("doctor: all checks pass with the spool transport and a Maildir inbound", "[doctor]") {
    Setup s;
    REQUIRE(runSupportmail({"--config", s.conf, "status"}).exitCode == 0);  // creates and migrates the database
    auto r = runSupportmail({"--config", s.conf, "doctor"});
    INFO(r.out << r.err);
    CHECK(r.exitCode == 0);
    CHECK(!has(r.out, "FAIL"));
    CHECK(has(r.out, "ok   config: " + s.conf));
    CHECK(has(r.out, "ok   database: "));
    CHECK(has(r.out, "ok   transport: maildir:"));
    CHECK(has(r.out, "ok   inbound.support: maildir:" + s.inbox));
    CHECK(has(r.out, "ok   templates: id_mail en"));
    CHECK(has(r.out, "ok   templates: id_mail vi"));
}

TEST_CASE("doctor: a missing database is a failure and is not created", "[doctor]") {
    Setup s;
    auto r = runSupportmail({"--config", s.conf, "doctor"});
    CHECK(r.exitCode == 78);
    CHECK(has(r.out, "FAIL database: "));
    CHECK(has(r.out, "ok   templates: id_mail en"));  // the other checks still run
    CHECK(!smtest::fileExists(s.dir.file("supportmail.db")));
}

TEST_CASE("doctor: an unknown key fails the configuration with file and line, exit 78", "[doctor]") {
    Setup s("no.such_key = 1\n");
    auto r = runSupportmail({"--config", s.conf, "doctor"});
    INFO(r.out << r.err);
    CHECK(r.exitCode == 78);
    CHECK(has(r.out, "FAIL config: " + s.conf + ":"));
    CHECK(has(r.out, "unknown key 'no.such_key'"));
    CHECK(has(r.out, "skip database"));
    CHECK(has(r.out, "skip templates"));
}

TEST_CASE("doctor: a broken template fails with the file named, exit 78", "[doctor]") {
    smtest::TempDir tpl;
    fs::copy(smtest::sourceDir() + "/templates", tpl.path() + "/templates", fs::copy_options::recursive);
    const std::string broken = tpl.path() + "/templates/id_mail/vi.txt.mustache";
    smtest::writeFile(broken, smtest::readFile(broken) + "\n{{#x}} unclosed\n");
    Setup s;
    {  // point templates.dir at the copy (writeTestConfig sets it to the project's)
        std::string text = smtest::readFile(s.conf);
        const std::string from = "templates.dir = " + smtest::sourceDir() + "/templates\n";
        REQUIRE(has(text, from));
        text.replace(text.find(from), from.size(), "templates.dir = " + tpl.path() + "/templates\n");
        smtest::writeFile(s.conf, text);
    }
    REQUIRE(runSupportmail({"--config", s.conf, "status"}).exitCode == 0);
    auto r = runSupportmail({"--config", s.conf, "doctor"});
    INFO(r.out << r.err);
    CHECK(r.exitCode == 78);
    CHECK(has(r.out, "FAIL templates: id_mail vi: " + broken));
    CHECK(has(r.out, "ok   templates: id_mail en"));
    CHECK(has(r.out, "ok   database: "));
}
