// Issue 11: TLS by default. The rule (mail/tls_policy.h) and what the configuration
// loader makes of it; plaintext to the loopback keeps working end to end in the
// integration tests that talk to the fault proxy on 127.0.0.1.
#include <catch2/catch.hpp>

#include <chrono>

#include "app/config.h"
#include "mail/tls_policy.h"
#include "support/test_support.h"

using sm::mail::TlsRule;

TEST_CASE("the loopback is localhost, 127.0.0.0/8 and ::1 written as such", "[tls][trust]") {
    for (const char* host : {"localhost", "LOCALHOST", "127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]"})
        CHECK(sm::mail::isLoopbackHost(host));
    for (const char* host : {"128.0.0.1", "10.0.0.1", "192.0.2.10", "mail.example.com", "localhost.example.com",
                             "::2", "[2001:db8::1]", "", "127.0.0.1.example.com"})
        CHECK_FALSE(sm::mail::isLoopbackHost(host));
}

TEST_CASE("a server not on the loopback gets TLS unless allow_plaintext is written", "[tls][trust]") {
    const bool off = false, on = true;
    CHECK(sm::mail::tlsRule("smtps://mail.example.com:465", nullptr, false) == TlsRule::Implicit);
    CHECK(sm::mail::tlsRule("imaps://mail.example.com/INBOX", &off, false) == TlsRule::Implicit);
    CHECK(sm::mail::tlsRule("maildir:/var/spool/x", nullptr, false) == TlsRule::NotNetwork);
    // Not written: STARTTLS required on the network, plaintext allowed on the loopback.
    CHECK(sm::mail::tlsRule("smtp://mail.example.com:587", nullptr, false) == TlsRule::StartTlsRequired);
    CHECK(sm::mail::tlsRule("imap://192.0.2.10:143/INBOX", nullptr, false) == TlsRule::StartTlsRequired);
    CHECK(sm::mail::tlsRule("smtp://127.0.0.1:25", nullptr, false) == TlsRule::PlaintextLoopback);
    CHECK(sm::mail::tlsRule("smtp://[::1]:25", nullptr, false) == TlsRule::PlaintextLoopback);
    // Written starttls = true: always required.
    CHECK(sm::mail::tlsRule("smtp://127.0.0.1:25", &on, false) == TlsRule::StartTlsRequired);
    // Written starttls = false for a network server: refused, unless allow_plaintext.
    CHECK_THROWS_WITH(sm::mail::tlsRule("smtp://mail.example.com:25", &off, false),
                      Catch::Contains("not on the loopback"));
    CHECK(sm::mail::tlsRule("smtp://mail.example.com:25", &off, true) == TlsRule::PlaintextAllowed);
    CHECK(sm::mail::tlsRule("smtp://mail.example.com:25", nullptr, true) == TlsRule::PlaintextAllowed);
}

TEST_CASE("the configuration turns STARTTLS on for network servers and refuses plaintext before connecting",
          "[tls][trust][cli]") {
    smtest::TempDir dir;
    auto load = [&](const std::string& transport, const std::string& extra) {
        return sm::app::loadSettings(smtest::writeTestConfig(dir, transport, extra));
    };
    auto s = load("smtp://192.0.2.10:25", "inbound.support.url = imap://mail.example.com:143/INBOX\n");
    CHECK(s.transport.startTls);
    CHECK(s.transportTlsRule == TlsRule::StartTlsRequired);
    REQUIRE(s.inbound.size() == 1);
    CHECK(s.inbound[0].startTls);
    auto loop = load("smtp://127.0.0.1:25", "inbound.support.url = imap://127.0.0.1:143/INBOX\n");
    CHECK_FALSE(loop.transport.startTls);
    CHECK(loop.transportTlsRule == TlsRule::PlaintextLoopback);
    CHECK_FALSE(loop.inbound[0].startTls);
    auto allowed = load("smtp://192.0.2.10:25", "transport.starttls = false\ntransport.allow_plaintext = true\n"
                                                "inbound.support.url = imap://192.0.2.10:143/INBOX\n"
                                                "inbound.support.allow_plaintext = true\n");
    CHECK_FALSE(allowed.transport.startTls);
    CHECK(allowed.transportTlsRule == TlsRule::PlaintextAllowed);
    CHECK_FALSE(allowed.inbound[0].startTls);
    CHECK_THROWS_WITH(load("smtp://192.0.2.10:25", "transport.starttls = false\n"),
                      Catch::Contains("transport.starttls: STARTTLS is off for 192.0.2.10"));
    CHECK_THROWS_WITH(load("maildir:" + dir.file("spool"), "inbound.support.url = imap://192.0.2.10:143/INBOX\n"
                                                          "inbound.support.starttls = false\n"),
                      Catch::Contains("inbound.support.starttls: STARTTLS is off for 192.0.2.10"));

    // The binary: exit 78 at once, before any connection (192.0.2.10 is TEST-NET, never answers).
    const std::string conf = smtest::writeTestConfig(dir, "smtp://192.0.2.10:25", "transport.starttls = false\n");
    const auto start = std::chrono::steady_clock::now();
    auto r = smtest::runSupportmail({"--config", conf, "deliver"});
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count();
    CHECK(r.exitCode == 78);
    CHECK(r.err.find("not on the loopback") != std::string::npos);
    CHECK(seconds < 10);  // transport.connect_timeout is 15 s: no connection was tried
}
