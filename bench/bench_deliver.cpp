// Delivery benchmark: N queued mails of a given payload size go out through
// jobs::deliver over CONNECTIONS reused SMTP connections, outbox updates included
// (each outcome committed as it is known, as in production). Compare with Postfix's
// smtp-source sending the same count and size to the same server:
// scripts/bench-deliver.sh starts a private Postfix + Dovecot and runs both over one
// connection; bench/bench-deliver-sink.sh measures against Postfix's smtp-sink, with
// smtp-source -s 16 as the ceiling.
//   bench_deliver smtp://127.0.0.1:PORT [N=1000] [PAYLOAD_BYTES=2000] [RCPT=alice@example.test]
//                 [CONNECTIONS=1] [RECIPIENTS=1]
// RECIPIENTS > 1: the mails go round-robin to that many addresses (1.RCPT, 2.RCPT, ...),
// so that deliver, which keeps one recipient's mails on one connection, can spread them.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include <Poco/File.h>
#include <Poco/Logger.h>

#include "config/settings.h"
#include "jobs/deliver.h"
#include "mail/transport.h"
#include "store/database.h"
#include "store/outbox.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_deliver smtp://HOST:PORT [N] [PAYLOAD_BYTES] [RCPT] [CONNECTIONS] "
                             "[RECIPIENTS]\n"
                             "(scripts/bench-deliver.sh starts a private server and compares with smtp-source)\n");
        return 64;
    }
    const std::string url = argv[1];
    const int count = argc > 2 ? std::atoi(argv[2]) : 1000;
    const int payload = argc > 3 ? std::atoi(argv[3]) : 2000;
    const std::string rcpt = argc > 4 ? argv[4] : "alice@example.test";
    sm::config::DeliverySettings settings;
    settings.connections = argc > 5 ? std::atoi(argv[5]) : 1;
    const int recipients = argc > 6 ? std::max(1, std::atoi(argv[6])) : 1;

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
            const std::string to = recipients > 1 ? std::to_string(i % recipients) + "." + rcpt : rcpt;
            row.recipients = {to};
            row.bytes = "From: support@example.test\r\nTo: " + to + "\r\nSubject: bench " + std::to_string(i) +
                        "\r\nMessage-ID: " + row.messageId + "\r\nDate: Thu, 26 Nov 2026 04:00:00 +0000\r\n\r\n" +
                        body + "\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }
    sm::mail::TransportSettings ts;
    ts.url = url;
    auto& log = Poco::Logger::get("bench");
    log.setLevel("warning");
    // The whole process, and the calling thread alone (the database side: claims,
    // marks, commits); the rest is the connections' threads (libcurl and the kernel).
    auto cpuSeconds = [](int who) {
        rusage ru{};
        ::getrusage(who, &ru);
        return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    };
    const double cpu0 = cpuSeconds(RUSAGE_SELF);
    const double main0 = cpuSeconds(RUSAGE_THREAD);
    const auto t0 = std::chrono::steady_clock::now();
    auto report = sm::jobs::deliver(
        *db, settings, [&] { return sm::mail::makeTransport(ts); }, log);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpuSeconds(RUSAGE_SELF) - cpu0;
    const double mainCpu = cpuSeconds(RUSAGE_THREAD) - main0;
    Poco::File(dir).remove(true);
    std::printf("supportmail deliver: %d of %d mails (%d-byte payload) in %.3f s: %.0f mails/s, %d connection%s, "
                "outbox updates committed; CPU %.0f us/mail (main thread %.0f)\n",
                report.sent, count, payload, seconds, report.sent / seconds, settings.connections,
                settings.connections == 1 ? "" : "s", 1e6 * cpu / std::max(1, report.sent),
                1e6 * mainCpu / std::max(1, report.sent));
    if (report.sent != count) {
        std::fprintf(stderr, "bench_deliver: %d retried, %d parked: %s\n", report.retried, report.parked,
                     report.lastError.c_str());
        return 1;
    }
    return 0;
}
