// process: claims pages of pending inbound mail and hands each message to a
// processing::MessageHandler (jobs/process/), one savepoint per message.
#include "jobs/process.h"

#include "jobs/crash_point.h"
#include "jobs/id_mail.h"
#include "jobs/process/message_handler.h"
#include "store/contracts.h"
#include "store/database.h"
#include "store/inbound.h"
#include "store/outbox.h"
#include "mail/mime_parser.h"

#include <Poco/NullChannel.h>

#include <algorithm>
#include <cstdint>
#include <set>

namespace sm::jobs {

ProcessReport process(store::Database& db, const app::Settings& settings, const mail::TemplateSet& templates,
                      Poco::Logger& log, const Poco::Timestamp& now, ProgressSink* progress) {
    ProcessReport report;
    // Each mail's rows are written once: a small page cache keeps the run's memory
    // flat however many mails wait (the 64 MB default grew with the queue).
    store::PageCacheLimit cache(db, 8);
    store::Inbound inbound(db);
    if (progress) progress->begin(inbound.counts().pending);
    std::int64_t afterId = 0;  // every message up to here was handled or deferred by this run
    // Messages rolled back because another worker held their contract's balance, to be
    // tried again in a later page. Holding a balance lock lasts until the page commits;
    // a worker that waited for it whenever it met one sat idle for half the other's
    // page, and two workers on contracts in random order were no faster than one.
    std::set<std::int64_t> deferred;
    bool progressed = true;  // the last page handled at least one message
    std::string raw;
    // A page of messages (process.batch) is one transaction, each message inside it
    // its own savepoint: one fsync per page instead of one per message (about half
    // of a run's time), and still all or nothing per message. A crash before the
    // commit leaves the whole page pending: the next run does it again, and since
    // everything a message causes (incident, debit, reply in the outbox, its own end
    // state) is in that transaction, nothing is done twice. A message whose handling
    // throws is rolled back alone; the page so far is committed, then the error goes up.
    for (;;) {
        // The page is read and claimed inside the transaction that handles it: on
        // PostgreSQL other workers skip these rows until it ends (commit, or rollback
        // when this worker dies), so each message is handled by one worker once. It
        // begins at the first deferred message, if any: the rows between that this
        // run handled are no longer pending.
        store::Transaction tx(db);
        // A page holds up to process.batch new messages besides the deferred ones (at most
        // as many again: a balance held for long fills the pages with deferred messages,
        // and the worker then waits for it instead of reading them again and again).
        const std::int64_t from = deferred.empty() ? afterId : *deferred.begin() - 1;
        const int limit = settings.process.batch + std::min(static_cast<int>(deferred.size()), settings.process.batch);
        auto rows = inbound.pending(from, limit);
        if (rows.empty()) break;
        // A deferred message this page did not claim is another worker's now (or done),
        // unless the page ended before it.
        const std::int64_t seenUpTo = static_cast<int>(rows.size()) < limit ? INT64_MAX : rows.back().id;
        deferred.erase(deferred.begin(), deferred.upper_bound(seenUpTo));
        std::int64_t inPage = 0;
        // Balances another worker holds are not waited for while there is other work:
        // the message is deferred. After a page that could do nothing, the first
        // message waits (holding no balance lock yet, it cannot deadlock).
        bool mayWait = !progressed;
        for (auto& row : rows) {
            store::Savepoint message(db, "message");
            // One message's bytes in memory at a time, in a buffer reused across the
            // run: memory is bounded by the largest message, not by the page.
            raw.swap(row.raw);
            try {
                inbound.rawInto(row.id, row.raw);
                processing::MessageHandler handler(db, settings, templates, log, now, report);
                handler.setBalanceWait(mayWait ? store::LockWait::OnlyWhenHoldingNone : store::LockWait::Never);
                handler.handle(row);
                raw.swap(row.raw);
            } catch (const store::BalanceBusy& e) {
                // Another worker holds this message's contract balance until its page
                // commits: this message waits for a later page, the others go on.
                message.rollback();
                raw.swap(row.raw);
                log.debug("inbound #" + std::to_string(row.id) + ": " + e.what() + "; deferred to a later page");
                deferred.insert(row.id);
                afterId = std::max(afterId, row.id);
                continue;
            } catch (...) {
                message.rollback();  // this message's work only
                tx.commit();
                progressAdvance(progress, inPage);
                throw;
            }
            message.release();
            afterId = std::max(afterId, row.id);
            ++inPage;
            mayWait = false;
        }
        crashPoint("process.before_commit");
        tx.commit();
        progressAdvance(progress, inPage);
        progressed = inPage > 0;
    }
    return report;
}

std::vector<DryRunOutcome> processDryRun(store::Database& db, const app::Settings& settings,
                                         const mail::TemplateSet& templates, const Poco::Timestamp& now) {
    // The handlers log what they do ("case opened ..."): none of it happens, so the
    // lines go nowhere.
    auto& quiet = Poco::Logger::get("supportmail.dry-run");
    quiet.setChannel(new Poco::NullChannel);
    std::vector<DryRunOutcome> out;
    ProcessReport report;
    store::Inbound inbound(db);
    store::Outbox outbox(db);
    store::Transaction tx(db);  // never committed: the destructor rolls everything back
    std::int64_t lastOutbox = 0;
    db.session() << "SELECT COALESCE(MAX(id), 0) FROM outbox", Poco::Data::Keywords::into(lastOutbox),
        Poco::Data::Keywords::now;
    std::int64_t afterId = 0;
    for (;;) {
        auto rows = inbound.pending(afterId, settings.process.batch);
        if (rows.empty()) break;
        for (auto& row : rows) {
            afterId = row.id;
            inbound.rawInto(row.id, row.raw);
            DryRunOutcome o;
            o.inboundId = row.id;
            const auto parsed = mail::parseMail(row.raw);
            o.subject = parsed.subject;
            o.sender = parsed.from.email;
            store::Savepoint message(db, "dry_run");
            try {
                processing::MessageHandler handler(db, settings, templates, quiet, now, report);
                handler.handle(row);
                if (auto end = inbound.byId(row.id)) {
                    o.state = end->state;
                    o.classification = end->classification;
                    o.reason = end->reason;
                }
                const OutboxRenderer renderer(db, settings, templates);
                for (const auto& q : outbox.after(lastOutbox)) {
                    lastOutbox = q.id;
                    o.answers.push_back({q.kind, q.recipients, mail::parseMail(renderer.bytesOf(q)).subject});
                }
                // Kept until the end (as a real run keeps it) so the next message sees
                // it: a follow-up to a case this run would open, a sender's reply limit.
                message.release();
            } catch (const std::exception& e) {
                o.error = e.what();
                message.rollback();
            }
            out.push_back(std::move(o));
            std::string().swap(row.raw);  // one message's bytes at a time
        }
    }
    return out;
}

}  // namespace sm::jobs
