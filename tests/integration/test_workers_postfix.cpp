// Several deliver workers on PostgreSQL against the real Postfix (issue 12, item 6):
// 4 `supportmail deliver` processes share one outbox; every mail reaches the Dovecot
// mailbox exactly once (its Message-ID counted in the Maildir). PostgreSQL only: run
// by ctest's "integration-pg:" entries. SUPPORTMAIL_TEST_WORKLOAD=N multiplies the
// 400 mails of a CI run (25 gives the 10,000).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <thread>

#include <Poco/Data/Session.h>

#include "store/database.h"
#include "store/outbox.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

TEST_CASE("workers: 4 deliver processes send each mail to the real Postfix exactly once", "[.pg][workers][postfix]") {
    const char* w = std::getenv("SUPPORTMAIL_TEST_WORKLOAD");
    const int n = 400 * (w && std::atoi(w) > 0 ? std::atoi(w) : 1);
    ::setenv("MAIL_ENV_FILE", SUPPORTMAIL_MAIL_ENV_FILE, 0);  // the MAILPG fixture's mail servers
    smtest::MailServers s;
    smtest::TempDir dir;
    const std::string conf = s.smtpConfig(dir, "delivery.batch = 20\n");
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    const std::string tag = "pgw." + std::to_string(sm::store::Database::nowSeconds()) + "." +
                            std::to_string(reinterpret_cast<std::uintptr_t>(&dir) % 100000);
    {
        sm::store::Outbox outbox(*db);
        sm::store::Transaction tx(*db);
        for (int i = 0; i < n; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<" + tag + "." + std::to_string(i) + "@supportmail.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {"ivan@example.test"};
            row.bytes = "From: support@example.test\r\nTo: ivan@example.test\r\nSubject: mail " + std::to_string(i) +
                        "\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: " + row.messageId +
                        "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nmail " +
                        std::to_string(i) + "\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }
    std::vector<smtest::RunResult> runs(4);
    std::vector<std::thread> workers;
    for (auto& r : runs)
        workers.emplace_back([&] { r = smtest::runSupportmail({"--config", conf, "deliver"}, s.auth()); });
    for (auto& t : workers) t.join();
    int sent = 0;
    for (const auto& r : runs) {
        INFO(r.out << r.err);
        CHECK(r.exitCode == 0);
        CHECK(r.err.empty());
        auto at = r.out.find("deliver: ");
        REQUIRE(at != std::string::npos);
        sent += std::atoi(r.out.c_str() + at + 9);
    }
    CHECK(sent == n);
    int queuedOrOut = 0;
    db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'sent'", into(queuedOrOut), now;
    CHECK(queuedOrOut == n);

    // What Postfix handed to Dovecot, counted by Message-ID in ivan's Maildir.
    const std::string maildir = s.env.stateDir + "/mail/ivan/Maildir";
    std::map<std::string, int> received;
    for (int tries = 0; tries < 1200; ++tries) {
        received.clear();
        for (const char* sub : {"/new", "/cur"})
            for (const auto& file : smtest::listFiles(maildir + sub)) {
                const std::string text = smtest::readFile(file);
                const auto at = text.find("Message-ID: <" + tag + ".");
                if (at == std::string::npos) continue;
                received[text.substr(at + 12, text.find('>', at) - at - 11)]++;
            }
        if (received.size() >= static_cast<std::size_t>(n)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(received.size() == static_cast<std::size_t>(n));
    int doubled = 0;
    for (const auto& [id, times] : received) doubled += times > 1;
    CHECK(doubled == 0);
}
