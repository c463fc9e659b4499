// deliver over several connections without a server (issue 13, item 3): into the
// spool with 4 writers every Message-ID lands once and the report adds up, and
// delivery.connections outside 1..32 stops every command with the key named; an
// unreachable server costs one mail's attempt, not one per connection.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <regex>

#include "jobs/deliver.h"
#include "mail/spool_transport.h"
#include "store/outbox.h"
#include "support/job_fixture.h"

TEST_CASE("deliver with 4 spool writers stores each Message-ID once and counts every mail", "[store][deliver]") {
    smtest::JobFixture d("delivery.connections = 4\ndelivery.batch = 40\n");
    const int n = 600;
    {
        sm::store::Outbox outbox(*d.db);
        sm::store::Transaction tx(*d.db);
        for (int i = 0; i < n; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<writers." + std::to_string(i) + "@example.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {"user" + std::to_string(i % 17) + "@example.test"};
            row.bytes = "Message-ID: " + row.messageId + "\r\nSubject: x\r\n\r\nx\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }
    int made = 0;
    auto report = sm::jobs::deliver(
        *d.db, d.settings.delivery,
        [&] {
            ++made;
            return sm::mail::makeTransport(d.settings.transport);
        },
        d.log);
    CHECK(made == 4);
    CHECK(report.sent == n);
    CHECK(report.retried == 0);
    CHECK(report.parked == 0);
    CHECK_FALSE(report.serverUnavailable);
    REQUIRE(report.perConnection.size() == 4);
    int total = 0;
    for (int c : report.perConnection) total += c;
    CHECK(total == n);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == n);

    std::map<std::string, int> stored;
    for (const auto& file : smtest::listFiles(d.dir.file("spool") + "/new")) {
        const std::string text = smtest::readFile(file);
        const auto at = text.find("Message-ID: ");
        REQUIRE(at != std::string::npos);
        stored[text.substr(at + 12, text.find("\r\n", at) - at - 12)]++;
    }
    CHECK(stored.size() == static_cast<std::size_t>(n));
    int doubled = 0;
    for (const auto& [id, times] : stored) doubled += times > 1;
    CHECK(doubled == 0);
    CHECK(smtest::listFiles(d.dir.file("spool") + "/tmp").empty());

    // A second run finds nothing due and sends nothing again.
    auto again = sm::jobs::deliver(
        *d.db, d.settings.delivery, [&] { return sm::mail::makeTransport(d.settings.transport); }, d.log);
    CHECK(again.sent == 0);
    CHECK(smtest::listFiles(d.dir.file("spool") + "/new").size() == static_cast<std::size_t>(n));
}

TEST_CASE("deliver with 4 connections to a closed port tries one mail and leaves the rest untouched", "[store][deliver]") {
    smtest::JobFixture d("delivery.connections = 4\n");
    {
        sm::store::Outbox outbox(*d.db);
        for (int i = 0; i < 20; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<closed." + std::to_string(i) + "@example.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {"user" + std::to_string(i) + "@example.test"};
            row.bytes = "Message-ID: " + row.messageId + "\r\n\r\nx\r\n";
            outbox.enqueue(row);
        }
    }
    // A port nobody listens on: bound by the kernel's choice, then closed again.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    ::close(fd);
    sm::mail::TransportSettings ts;
    ts.url = "smtp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    ts.connectTimeoutSeconds = 3;
    auto report = sm::jobs::deliver(
        *d.db, d.settings.delivery, [&] { return sm::mail::makeTransport(ts); }, d.log);
    CHECK(report.serverUnavailable);
    CHECK(report.sent == 0);
    CHECK(report.retried == 1);
    CHECK(report.perConnection == std::vector<int>{1, 0, 0, 0});
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 0") == 19);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1") == 1);
}

TEST_CASE("delivery.connections must be 1 to 32", "[cli][config]") {
    smtest::TempDir dir;
    const std::string base = smtest::readFile(smtest::writeTestConfig(dir, "maildir:" + dir.file("spool")));
    const std::string conf = dir.file("connections.properties");
    for (const std::string bad : {"0", "33", "-1", "four"}) {
        smtest::writeFile(conf, base + "delivery.connections = " + bad + "\n");
        auto r = smtest::runSupportmail({"--config", conf, "deliver"});
        INFO(bad << ": " << r.err);
        CHECK(r.exitCode == 78);
        CHECK(std::regex_search(r.err, std::regex(":[0-9]+: delivery.connections: '" + bad + "' ")));
    }
    for (const std::string good : {"1", "32"}) {
        smtest::writeFile(conf, base + "delivery.connections = " + good + "\n");
        auto r = smtest::runSupportmail({"--config", conf, "deliver"});
        INFO(good << ": " << r.err);
        CHECK(r.exitCode == 0);
        CHECK(r.out.find("deliver: 0 sent") != std::string::npos);
    }
}
