// The floor under bench_deliver: the same mails sent by mail::SmtpTransport (libcurl's
// easy interface, one kept connection per thread) and nothing else: no database, no
// claims, no outcome marks, no hand-over between threads. What deliver could reach if
// everything it adds cost nothing; bench/bench-deliver-sink.sh sets it beside
// smtp-source and the ceiling in the same round.
//   bench_transport smtp://HOST:PORT [N=1000] [PAYLOAD_BYTES=2000] [RCPT=alice@example.test] [CONNECTIONS=1]
// The mails are built as bench_deliver builds them (lines of 78 characters).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mail/message.h"
#include "mail/transport.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_transport smtp://HOST:PORT [N] [PAYLOAD_BYTES] [RCPT] [CONNECTIONS]\n");
        return 64;
    }
    const std::string url = argv[1];
    const int count = argc > 2 ? std::atoi(argv[2]) : 1000;
    const int payload = argc > 3 ? std::atoi(argv[3]) : 2000;
    const std::string rcpt = argc > 4 ? argv[4] : "alice@example.test";
    const int connections = argc > 5 ? std::max(1, std::atoi(argv[5])) : 1;

    std::string body;
    while (static_cast<int>(body.size()) < payload) body += std::string(78, 'x') + "\r\n";
    body.resize(static_cast<std::size_t>(payload));
    std::vector<std::string> mails(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i)
        mails[static_cast<std::size_t>(i)] = "From: support@example.test\r\nTo: " + rcpt + "\r\nSubject: bench " +
                                             std::to_string(i) + "\r\nMessage-ID: <bench." + std::to_string(i) +
                                             "@example.test>\r\nDate: Thu, 26 Nov 2026 04:00:00 +0000\r\n\r\n" +
                                             body + "\r\n";
    sm::mail::TransportSettings ts;
    ts.url = url;
    sm::mail::Envelope envelope;
    envelope.from = "support@example.test";
    envelope.recipients = {rcpt};

    std::atomic<int> sent{0}, failed{0};
    std::string firstError;
    rusage r0{};
    ::getrusage(RUSAGE_SELF, &r0);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < connections; ++c)
        threads.emplace_back([&, c] {
            auto transport = sm::mail::makeTransport(ts);
            for (int i = c; i < count; i += connections) {
                const auto& m = mails[static_cast<std::size_t>(i)];
                const auto outcome = transport->send(envelope, "", m);
                if (outcome.status == sm::mail::DeliveryStatus::Sent) ++sent;
                else if (failed++ == 0) firstError = outcome.reply;
            }
        });
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage r1{};
    ::getrusage(RUSAGE_SELF, &r1);
    const auto cpu = [](const rusage& r) {
        return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    };
    std::printf("transport alone (libcurl, no database): %d of %d mails (%d-byte payload) in %.3f s: %.0f mails/s, "
                "%d connection%s; CPU %.0f us/mail\n",
                sent.load(), count, payload, seconds, sent / seconds, connections, connections == 1 ? "" : "s",
                1e6 * (cpu(r1) - cpu(r0)) / std::max(1, sent.load()));
    if (failed > 0) {
        std::fprintf(stderr, "bench_transport: %d not sent, the first: %s\n", failed.load(), firstError.c_str());
        return 1;
    }
    return 0;
}
