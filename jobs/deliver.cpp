#include "jobs/deliver.h"

#include <algorithm>

#include "jobs/outgoing.h"
#include "jobs/crash_point.h"
#include "store/leases.h"
#include "store/outbox.h"

namespace sm::jobs {

std::int64_t retryDelaySeconds(const app::DeliverySettings& s, int attempts) {
    std::int64_t delay = s.retryInitialSeconds;
    for (int i = 1; i < attempts && delay < s.retryMaxSeconds; ++i) delay *= 2;
    return std::min<std::int64_t>(delay, s.retryMaxSeconds);
}

DeliveryReport deliver(store::Database& db, const app::DeliverySettings& settings, mail::Transport& transport,
                       Poco::Logger& log, int limit, ProgressSink* progress, const OutboxRenderer* renderer) {
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
    // Several workers share the queue: each claims a page for claimSeconds (renewed
    // while it sends) and sends only what it claimed. A worker that dies keeps its
    // claims until they expire; then another takes them over (a mail accepted by the
    // server just before the death goes out once more, same Message-ID). Claims still
    // held when this run ends (server unavailable, --limit) are given back.
    const std::string claimer = store::makeLeaseHolder();
    const int ttl = settings.claimSeconds;
    struct GiveBack {
        store::Outbox& outbox;
        const std::string& claimer;
        ~GiveBack() {
            try {
                outbox.renewClaims(claimer, 0);
            } catch (...) {
                // They expire on their own.
            }
        }
    } giveBack{outbox, claimer};
    if (int back = outbox.releaseClaimsOfDeadWorkers())
        log.warning(std::to_string(back) + " mails claimed by a killed deliver run of this machine are due again");
    std::int64_t afterId = 0;
    int handled = 0;
    for (;;) {
        db.checkInterrupted();
        const std::int64_t startedAt = store::Database::nowSeconds();
        std::int64_t claimUntil = startedAt + ttl;
        auto rows = outbox.claim(startedAt, settings.batch, afterId, claimer, claimUntil);
        if (rows.empty()) break;
        for (auto& row : rows) {
            afterId = row.id;
            db.checkInterrupted();  // a run that lost its job lease stops before the next mail
            const std::int64_t before = store::Database::nowSeconds();
            if (before >= claimUntil - 2 * ttl / 3) {
                // A third of the claim is used: extend it. Past its end, another worker
                // may have taken a row over: send only what is still ours.
                const bool lapsed = before >= claimUntil;
                claimUntil = before + ttl;
                outbox.renewClaims(claimer, claimUntil);
                if (lapsed && !outbox.stillClaimed(row.id, claimer)) {
                    log.warning("not sending " + row.messageId + ": its claim lapsed and another worker took it");
                    continue;
                }
            }
            // An ID mail queued without its bytes is rendered now (same Message-ID on every
            // attempt); one that cannot be is parked with the reason.
            try {
                if (row.bytes.empty()) {
                    if (!renderer) throw RenderError("outbox mail #" + std::to_string(row.id) + " holds no bytes");
                    row.bytes = renderer->bytesOf(row);
                }
            } catch (const RenderError& e) {
                outbox.markParked(row.id, row.attempts, e.what());
                ++report.parked;
                log.error("parked " + row.messageId + ": " + e.what());
                progressAdvance(progress);
                continue;
            }
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
