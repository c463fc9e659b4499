// Delivery benchmark: N queued mails of a given payload size go out through
// jobs::deliver over one reused SMTP connection, outbox updates included (each
// outcome committed as it is known, as in production). Compare with Postfix's
// smtp-source sending the same count and size over one connection to the same
// server: scripts/bench-deliver.sh starts a private Postfix + Dovecot and runs both.
//   bench_deliver smtp://127.0.0.1:PORT [N=1000] [PAYLOAD_BYTES=2000] [RCPT=alice@example.test]
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <Poco/File.h>
#include <Poco/Logger.h>

#include "app/config.h"
#include "jobs/deliver.h"
#include "mail/transport.h"
#include "store/database.h"
#include "store/outbox.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_deliver smtp://HOST:PORT [N] [PAYLOAD_BYTES] [RCPT]\n"
                             "(scripts/bench-deliver.sh starts a private server and compares with smtp-source)\n");
        return 64;
    }
    const std::string url = argv[1];
    const int count = argc > 2 ? std::atoi(argv[2]) : 1000;
    const int payload = argc > 3 ? std::atoi(argv[3]) : 2000;
    const std::string rcpt = argc > 4 ? argv[4] : "alice@example.test";

    char dirTemplate[] = "/tmp/bench-deliver-XXXXXX";
    const std::string dir = ::mkdtemp(dirTemplate);
    auto db = sm::store::Database::open("sqlite:" + dir + "/bench.db");
    db->migrate();
    {
        // The payload as lines of 78 characters, like smtp-source's.
        std::string body;
        while (static_cast<int>(body.size()) < payload) body += std::string(78, 'x') + "\r\n";
        body.resize(static_cast<std::size_t>(payload));
        sm::store::Outbox outbox(*db);
        sm::store::Transaction tx(*db);
        for (int i = 0; i < count; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<bench." + std::to_string(i) + "@example.test>";
            row.kind = "bench";
            row.envelopeFrom = "support@example.test";
            row.recipients = {rcpt};
            row.bytes = "From: support@example.test\r\nTo: " + rcpt + "\r\nSubject: bench " + std::to_string(i) +
                        "\r\nMessage-ID: " + row.messageId + "\r\nDate: Thu, 26 Nov 2026 04:00:00 +0000\r\n\r\n" +
                        body + "\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }
    sm::mail::TransportSettings ts;
    ts.url = url;
    auto transport = sm::mail::makeTransport(ts);
    auto& log = Poco::Logger::get("bench");
    log.setLevel("warning");
    const auto t0 = std::chrono::steady_clock::now();
    auto report = sm::jobs::deliver(*db, sm::app::DeliverySettings{}, *transport, log);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Poco::File(dir).remove(true);
    std::printf("supportmail deliver: %d of %d mails (%d-byte payload) in %.3f s: %.0f mails/s, one connection, "
                "outbox updates committed\n",
                report.sent, count, payload, seconds, report.sent / seconds);
    if (report.sent != count) {
        std::fprintf(stderr, "bench_deliver: %d retried, %d parked: %s\n", report.retried, report.parked,
                     report.lastError.c_str());
        return 1;
    }
    return 0;
}
