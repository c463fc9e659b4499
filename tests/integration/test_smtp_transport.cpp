// SmtpTransport against the real Postfix + Dovecot of the MAIL fixture
// (tests/scripts/start-mail-servers.sh; MAIL_ENV_FILE names its env file).
// Mails are built by hand here: these tests must not depend on the composer.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "mail/smtp_transport.h"
#include "mail/transport.h"
#include "support/imap_reader.h"

using namespace sm::mail;

namespace {

const smtest::MailServerEnv& env() {
    static const smtest::MailServerEnv e = smtest::loadMailServerEnv();
    return e;
}

std::string uniqueId(const std::string& tag) {
    static std::atomic<int> n{0};
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return "<" + tag + "." + std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count()) +
           "." + std::to_string(::getpid()) + "." + std::to_string(++n) + "@smtp-test.example.test>";
}

/// A small RFC 5322 mail with CRLF line endings; the body has a line starting
/// with '.' to check that dot-stuffing is undone on the way.
std::string makeMail(const std::string& from, const std::string& to, const std::string& subject,
                     const std::string& messageId, const std::string& extraBody = "") {
    return "From: <" + from + ">\r\n"
           "To: <" + to + ">\r\n"
           "Subject: " + subject + "\r\n"
           "Date: Tue, 25 Nov 2025 12:00:00 +0000\r\n"
           "Message-ID: " + messageId + "\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n"
           "\r\n"
           "Hello,\r\n"
           ".a line that starts with a dot\r\n"
           "..and one with two\r\n" +
           extraBody + "Bye.\r\n";
}

enum class Mode { Plain, StartTls, Smtps };

TransportSettings settingsFor(Mode mode, const std::string& user = "alice",
                              const std::string& password = "alice-pw") {
    TransportSettings s;
    const auto& e = env();
    if (mode == Mode::Smtps) s.url = "smtps://" + e.host + ":" + std::to_string(e.smtpsPort);
    else s.url = "smtp://" + e.host + ":" + std::to_string(e.smtpPort);
    s.startTls = mode == Mode::StartTls;
    if (mode != Mode::Plain) s.caFile = e.caCert;
    s.username = user;
    s.password = password;
    s.heloName = "client.example.test";
    s.connectTimeoutSeconds = 5;
    s.timeoutSeconds = 30;
    return s;
}

Envelope envelope(const std::string& from, std::vector<std::string> to) {
    Envelope e;
    e.from = from;
    e.recipients = std::move(to);
    return e;
}

/// The stored message whose headers carry messageId, or "" (Postfix and Dovecot
/// prepend Return-Path/Delivered-To/Received; the rest must be our bytes).
std::string findById(const std::vector<std::string>& mails, const std::string& messageId) {
    for (const auto& m : mails)
        if (m.find("Message-ID: " + messageId + "\r\n") != std::string::npos) return m;
    return {};
}

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Waits until all ids are in user's INBOX (or 10 s passed); returns the mailbox.
std::vector<std::string> waitForIds(const std::string& user, const std::vector<std::string>& ids) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::vector<std::string> mails;
    for (;;) {
        mails = smtest::fetchAll(env(), user, user + "-pw");
        const bool all = std::all_of(ids.begin(), ids.end(),
                                     [&](const std::string& id) { return !findById(mails, id).empty(); });
        if (all || std::chrono::steady_clock::now() > deadline) return mails;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

TEST_CASE("SmtpTransport sends 3 mails over one authenticated connection", "[smtp]") {
    const auto [mode, name] = GENERATE(table<Mode, const char*>({{Mode::Plain, "plain smtp"},
                                                                 {Mode::StartTls, "STARTTLS"},
                                                                 {Mode::Smtps, "smtps"}}));
    INFO("mode: " << name);
    smtest::deleteAll(env(), "bob", "bob-pw");

    SmtpTransport t(settingsFor(mode));
    std::vector<std::string> ids, mails;
    for (int i = 0; i < 3; ++i) {
        ids.push_back(uniqueId("three"));
        mails.push_back(makeMail("alice@example.test", "bob@example.test",
                                 std::string("mail ") + std::to_string(i) + " via " + name, ids.back()));
        const DeliveryOutcome out = t.send(envelope("alice@example.test", {"bob@example.test"}), ids.back(),
                                           mails.back());
        INFO(out.reply);
        REQUIRE(out.status == DeliveryStatus::Sent);
        CHECK(out.reply.rfind("250 ", 0) == 0);
        CHECK(out.reply.find("queued as") != std::string::npos);
        CHECK_FALSE(out.serverUnavailable);
    }
    CHECK(t.connectionsOpened() == 1);  // the connection was kept and reused

    const auto inbox = smtest::waitForMessages(env(), "bob", "bob-pw", 3, 10000);
    REQUIRE(inbox.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        const std::string got = findById(inbox, ids[i]);
        INFO("Message-ID " << ids[i]);
        REQUIRE_FALSE(got.empty());
        CHECK(endsWith(got, mails[i]));  // byte for byte, dot-stuffing undone
    }
}

TEST_CASE("SmtpTransport: unknown recipient is a permanent failure with the server's reply", "[smtp]") {
    SmtpTransport t(settingsFor(Mode::Plain));
    const std::string id = uniqueId("unknown");
    const auto out = t.send(envelope("alice@example.test", {"nobody-here@example.test"}), id,
                            makeMail("alice@example.test", "nobody-here@example.test", "x", id));
    INFO(out.reply);
    CHECK(out.status == DeliveryStatus::PermanentFailure);
    CHECK(out.reply.rfind("550 5.1.1 ", 0) == 0);
    CHECK(out.reply.find("nobody-here@example.test") != std::string::npos);
    CHECK_FALSE(out.serverUnavailable);
}

TEST_CASE("SmtpTransport: a 451 at RCPT is a temporary failure", "[smtp]") {
    SmtpTransport t(settingsFor(Mode::Plain));
    const std::string id = uniqueId("tempfail");
    const auto out = t.send(envelope("alice@example.test", {"tempfail@example.test"}), id,
                            makeMail("alice@example.test", "tempfail@example.test", "x", id));
    INFO(out.reply);
    CHECK(out.status == DeliveryStatus::TemporaryFailure);
    CHECK(out.reply.rfind("451 4.3.0 ", 0) == 0);
    CHECK(out.reply.find("Temporary failure (test)") != std::string::npos);
    CHECK_FALSE(out.serverUnavailable);
}

TEST_CASE("SmtpTransport: closed port is temporary and marks the server unavailable", "[smtp]") {
    TransportSettings s;
    s.url = "smtp://127.0.0.1:1";
    s.connectTimeoutSeconds = 5;
    SmtpTransport t(s);
    const std::string id = uniqueId("closed");
    const auto out = t.send(envelope("alice@example.test", {"bob@example.test"}), id,
                            makeMail("alice@example.test", "bob@example.test", "x", id));
    INFO(out.reply);
    CHECK(out.status == DeliveryStatus::TemporaryFailure);
    CHECK(out.serverUnavailable);
    CHECK(out.reply.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("SmtpTransport: wrong password stops the batch and never shows the password", "[smtp]") {
    const std::string secret = "Wr0ng-s3cret-XYZ";
    const auto mode = GENERATE(Mode::Plain, Mode::Smtps);
    SmtpTransport t(settingsFor(mode, "alice", secret));
    const std::string id = uniqueId("badauth");
    const auto out = t.send(envelope("alice@example.test", {"bob@example.test"}), id,
                            makeMail("alice@example.test", "bob@example.test", "x", id));
    INFO(out.reply);
    CHECK(out.status == DeliveryStatus::TemporaryFailure);
    CHECK(out.serverUnavailable);
    CHECK(out.reply.find("authentication failed") != std::string::npos);
    CHECK(out.reply.find("535") != std::string::npos);
    CHECK(out.reply.find(secret) == std::string::npos);
    CHECK(t.describe().find(secret) == std::string::npos);
    CHECK(t.describe().find("alice") != std::string::npos);
}

TEST_CASE("SmtpTransport: the same transport sends fine after rejections", "[smtp]") {
    smtest::deleteAll(env(), "carol", "carol-pw");
    SmtpTransport t(settingsFor(Mode::StartTls));
    const std::string from = "alice@example.test";

    const std::string id1 = uniqueId("ok1");
    REQUIRE(t.send(envelope(from, {"carol@example.test"}), id1, makeMail(from, "carol@example.test", "1", id1))
                .status == DeliveryStatus::Sent);

    // a mix of a good and a rejected recipient: the whole mail is refused, nobody gets it
    const std::string idMixed = uniqueId("mixed");
    const auto mixed = t.send(envelope(from, {"carol@example.test", "nobody-here@example.test"}), idMixed,
                              makeMail(from, "carol@example.test", "mixed", idMixed));
    INFO(mixed.reply);
    CHECK(mixed.status == DeliveryStatus::PermanentFailure);
    CHECK(mixed.reply.find("550") != std::string::npos);

    const std::string idTemp = uniqueId("temp");
    CHECK(t.send(envelope(from, {"tempfail@example.test"}), idTemp,
                 makeMail(from, "tempfail@example.test", "t", idTemp))
              .status == DeliveryStatus::TemporaryFailure);

    const std::string id2 = uniqueId("ok2");
    const auto ok2 = t.send(envelope(from, {"carol@example.test"}), id2, makeMail(from, "carol@example.test", "2", id2));
    INFO(ok2.reply);
    REQUIRE(ok2.status == DeliveryStatus::Sent);
    // empty reverse-path (MAIL FROM:<>) works too
    const std::string id3 = uniqueId("nullsender");
    const auto ok3 = t.send(envelope("", {"carol@example.test"}), id3, makeMail(from, "carol@example.test", "3", id3));
    INFO(ok3.reply);
    REQUIRE(ok3.status == DeliveryStatus::Sent);
    CHECK(t.connectionsOpened() >= 2);  // libcurl dropped the failed transaction's connection

    const auto inbox = waitForIds("carol", {id1, id2, id3});
    CHECK_FALSE(findById(inbox, id1).empty());
    CHECK_FALSE(findById(inbox, id2).empty());
    const std::string nullSender = findById(inbox, id3);
    REQUIRE_FALSE(nullSender.empty());
    CHECK(nullSender.rfind("Return-Path: <>\r\n", 0) == 0);
    CHECK(findById(inbox, idMixed).empty());
}

TEST_CASE("SmtpTransport: TLS without the CA fails verification and verifyPeer=false accepts", "[smtp]") {
    const auto mode = GENERATE(Mode::StartTls, Mode::Smtps);
    TransportSettings s = settingsFor(mode);
    s.caFile.clear();  // system bundle: does not know the self-signed test certificate
    const std::string id = uniqueId("tls");
    const std::string mail = makeMail("alice@example.test", "dave@example.test", "tls", id);
    {
        SmtpTransport t(s);
        const auto out = t.send(envelope("alice@example.test", {"dave@example.test"}), id, mail);
        INFO(out.reply);
        CHECK(out.status == DeliveryStatus::TemporaryFailure);
        CHECK(out.serverUnavailable);
        CHECK(out.reply.find("certificate") != std::string::npos);
    }
    s.verifyPeer = false;
    SmtpTransport t(s);
    CHECK(t.describe().find("NOT verified") != std::string::npos);
    const auto out = t.send(envelope("alice@example.test", {"dave@example.test"}), id, mail);
    INFO(out.reply);
    CHECK(out.status == DeliveryStatus::Sent);
}

TEST_CASE("SmtpTransport: a 2 MB mail and makeTransport() round-trip byte for byte", "[smtp]") {
    smtest::deleteAll(env(), "erin", "erin-pw");
    std::string body;
    for (int i = 0; body.size() < 2 * 1024 * 1024; ++i)
        body += (i % 7 == 0 ? "." : "") + std::string("line ") + std::to_string(i) +
                " 0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    const std::string id = uniqueId("big");
    const std::string mail = makeMail("alice@example.test", "erin@example.test", "big", id, body);
    auto t = makeTransport(settingsFor(Mode::Smtps));
    const auto out = t->send(envelope("alice@example.test", {"erin@example.test"}), id, mail);
    INFO(out.reply);
    REQUIRE(out.status == DeliveryStatus::Sent);
    const auto inbox = waitForIds("erin", {id});
    const std::string got = findById(inbox, id);
    REQUIRE_FALSE(got.empty());
    CHECK(endsWith(got, mail));
}

TEST_CASE("SmtpTransport: envelope problems are refused locally", "[smtp]") {
    SmtpTransport t(settingsFor(Mode::Plain));
    const std::string id = uniqueId("local");
    const std::string mail = makeMail("alice@example.test", "bob@example.test", "x", id);
    auto out = t.send(envelope("alice@example.test", {}), id, mail);
    CHECK(out.status == DeliveryStatus::PermanentFailure);
    out = t.send(envelope("alice@example.test", {"bob@example.test>\r\nRCPT TO:<carol@example.test"}), id, mail);
    CHECK(out.status == DeliveryStatus::PermanentFailure);
    CHECK(out.reply.find('\r') == std::string::npos);
    out = t.send(envelope("alice@example.test\r\nRSET", {"bob@example.test"}), id, mail);
    CHECK(out.status == DeliveryStatus::PermanentFailure);
    CHECK(t.connectionsOpened() == 0);
}
