// doctor against the real Postfix and Dovecot: all ok with the right passwords;
// a wrong SMTP password, a wrong IMAP password and a closed port each fail that
// check precisely, exit 69, and no password appears in the output.
#include <catch2/catch.hpp>

#include <filesystem>

#include "support/mail_servers.h"

using smtest::runSupportmail;

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

struct Doctor : smtest::MailServers {
    smtest::TempDir dir;

    std::string config(int smtpPort = 0) const { return smtpConfig(dir, supportInbound(), smtpPort); }
    smtest::RunResult run(const std::string& conf, const std::string& smtpPw, const std::string& imapPw) {
        return runSupportmail({"--config", conf, "doctor"},
                              {"SUPPORTMAIL_SMTP_PASSWORD=" + smtpPw, "SUPPORTMAIL_IMAP_PASSWORD=" + imapPw});
    }
};

}  // namespace

TEST_CASE("doctor against the real servers", "[integration][doctor]") {
    Doctor d;
    std::string conf = d.config();
    REQUIRE(runSupportmail({"--config", conf, "status"}).exitCode == 0);  // creates and migrates the database

    SECTION("all ok") {
        auto r = d.run(conf, "support-pw", "support-pw");
        INFO(r.out << r.err);
        CHECK(r.exitCode == 0);
        CHECK(!has(r.out, "FAIL"));
        CHECK(has(r.out, "ok   smtp: smtp://127.0.0.1:" + std::to_string(d.env.smtpPort)));
        CHECK(has(r.out, "TLS (STARTTLS), login ok"));
        CHECK(has(r.out, "ok   imap inbound.support: "));
        CHECK(has(r.out, "login ok, mailbox INBOX exists"));
        CHECK(has(r.out, "ok   database: "));
        CHECK(has(r.out, "ok   templates: id_mail en"));
    }
    SECTION("wrong SMTP password") {
        auto r = d.run(conf, "wrong-smtp-secret", "support-pw");
        INFO(r.out << r.err);
        CHECK(r.exitCode == 69);
        CHECK(has(r.out, "FAIL smtp: "));
        CHECK(has(r.out, "authentication failed for user 'support'"));
        CHECK(has(r.out, "ok   imap inbound.support: "));
        CHECK(!has(r.out + r.err, "wrong-smtp-secret"));
    }
    SECTION("wrong IMAP password") {
        auto r = d.run(conf, "support-pw", "wrong-imap-secret");
        INFO(r.out << r.err);
        CHECK(r.exitCode == 69);
        CHECK(has(r.out, "FAIL imap inbound.support: "));
        CHECK(has(r.out, "login failed"));
        CHECK(has(r.out, "ok   smtp: "));
        CHECK(!has(r.out + r.err, "wrong-imap-secret"));
    }
    SECTION("closed port") {
        std::string closed = d.config(1);
        auto r = d.run(closed, "support-pw", "support-pw");
        INFO(r.out << r.err);
        CHECK(r.exitCode == 69);
        CHECK(has(r.out, "FAIL smtp: smtp://127.0.0.1:1"));
        CHECK(has(r.out, "cannot connect"));
        CHECK(!has(r.out + r.err, "support-pw"));
    }
}
