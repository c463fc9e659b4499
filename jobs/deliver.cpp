#include "jobs/deliver.h"

#include <algorithm>

#include "jobs/outgoing.h"
#include "jobs/crash_point.h"
#include "store/outbox.h"

namespace sm::jobs {

std::int64_t retryDelaySeconds(const app::DeliverySettings& s, int attempts) {
    std::int64_t delay = s.retryInitialSeconds;
    for (int i = 1; i < attempts && delay < s.retryMaxSeconds; ++i) delay *= 2;
    return std::min<std::int64_t>(delay, s.retryMaxSeconds);
}

DeliveryReport deliver(store::Database& db, const app::DeliverySettings& settings, mail::Transport& transport,
                       Poco::Logger& log, int limit, ProgressSink* progress) {
    DeliveryReport report;
    store::Outbox outbox(db);
    // Each outcome is committed as soon as it is known, without an fsync of its own:
    // a crash of this process loses none, a power cut at worst a few "sent" marks
    // (those mails go out again, same Message-ID); a queued mail is never lost. An
    // fsync per mail was 30-40 % of the time of a run (bench_deliver).
    store::RelaxedDurability relaxed(db);
    if (progress) {
        const std::int64_t due = outbox.counts(store::Database::nowSeconds()).due;
        progress->begin(limit > 0 ? std::min<std::int64_t>(due, limit) : due);
    }
    std::int64_t afterId = 0;
    int handled = 0;
    for (;;) {
        const std::int64_t startedAt = store::Database::nowSeconds();
        auto rows = outbox.due(startedAt, settings.batch, afterId);
        if (rows.empty()) break;
        for (const auto& row : rows) {
            afterId = row.id;
            mail::Envelope env{settings.bounceAddress.empty() ? row.envelopeFrom
                                                              : verpReturnPath(settings.bounceAddress, row.id),
                               row.recipients};
            auto outcome = transport.send(env, row.messageId, row.bytes);
            crashPoint("deliver.after_send");
            const int attempts = row.attempts + 1;
            const std::int64_t now = store::Database::nowSeconds();
            std::string to;
            for (const auto& r : row.recipients) to += (to.empty() ? "" : ",") + r;
            switch (outcome.status) {
                case mail::DeliveryStatus::Sent:
                    outbox.markSent(row.id, outcome.reply);
                    outbox.forgetIds(row);
                    ++report.sent;
                    log.information("sent " + row.messageId + " (" + row.kind + ") to " + to);
                    break;
                case mail::DeliveryStatus::PermanentFailure:
                    outbox.markParked(row.id, attempts, outcome.reply);
                    ++report.parked;
                    log.warning("parked " + row.messageId + " (" + row.kind + ") to " + to + ": " + outcome.reply);
                    break;
                case mail::DeliveryStatus::TemporaryFailure:
                    if (now - row.createdAt >= settings.giveUpAfterSeconds) {
                        std::string why = "gave up after " + std::to_string(attempts) + " attempts: " + outcome.reply;
                        outbox.markParked(row.id, attempts, why);
                        ++report.parked;
                        log.warning("parked " + row.messageId + " to " + to + ": " + why);
                    } else {
                        std::int64_t next = now + retryDelaySeconds(settings, attempts);
                        outbox.markRetry(row.id, attempts, next, outcome.reply);
                        ++report.retried;
                        log.warning("will retry " + row.messageId + " to " + to + " in " +
                                    std::to_string(next - now) + " s: " + outcome.reply);
                    }
                    break;
            }
            report.lastError = outcome.status == mail::DeliveryStatus::Sent ? report.lastError : outcome.reply;
            progressAdvance(progress);
            if (outcome.serverUnavailable) {
                report.serverUnavailable = true;
                log.error("stopping delivery: " + transport.describe() + " is unavailable: " + outcome.reply);
                return report;
            }
            if (limit && ++handled >= limit) return report;
        }
    }
    return report;
}

}  // namespace sm::jobs
