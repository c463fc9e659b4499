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

#include <algorithm>
#include <cstdint>
#include <future>
#include <optional>
#include <set>

#include <Poco/NullChannel.h>

namespace sm::jobs {

ProcessReport process(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                      Poco::Logger& log, const Poco::Timestamp& now, ProgressSink* progress) {
    ProcessReport report;
    // Each mail's rows are written once: a small page cache keeps the run's memory
    // flat however many mails wait (the 64 MB default grew with the queue).
    store::PageCacheLimit cache(db, 8);
    store::Inbound inbound(db);
    if (progress) progress->begin(inbound.counts().pending);
    std::int64_t afterId = 0;  // every message up to here was handled or deferred by this run
    // Messages rolled back because another worker held their contract's balance, to be
    // tried again in a later page (PostgreSQL). Holding a balance lock lasts until the
    // page commits; a worker that waited for it whenever it met one sat idle for half
    // the other's page, and two workers on contracts in random order were no faster
    // than one.
    std::set<std::int64_t> deferred;
    bool progressed = true;  // the last page handled at least one message
    // The second core (jobs/process/second_core.h): the next message parsed and
    // classified, and the answers rendered and composed, while this thread writes.
    processing::SecondCore core(templates.directory());
    store::Outbox outbox(db);
    processing::DeferredAnswers answers(outbox);
    const auto prepareAhead = [&](store::InboundRow& row) {
        // A mail over process.max_message_bytes is judged by its headers alone, here.
        if (row.reason.rfind("too_large:", 0) == 0) return std::future<processing::PreparedMail>();
        inbound.rawInto(row.id, row.raw);
        return core.run([raw = std::move(row.raw)]() mutable { return processing::prepareMail(std::move(raw)); });
    };
    // Set when an answer failed to render after its message was done: the page is
    // done again with every answer rendered here and inserted inside its own message,
    // so the failure ends the run as it always did (that message rolled back alone,
    // the page before it committed, the error raised).
    bool inMessage = false;
    // A page of messages (process.batch) is one transaction, each message inside it
    // its own savepoint: one fsync per page instead of one per message (about half
    // of a run's time), and still all or nothing per message. A crash before the
    // commit loses the page's work and the next run does it again; as the page holds
    // everything a message causes (incident, debit, reply in the outbox, its own end
    // state) is in that transaction, nothing is done twice. A message whose handling
    // throws is rolled back alone; the page so far is committed, then the error goes up.
    // A request's answer renders on the helper while this thread writes the next
    // message, and is inserted after that message's savepoint (outbox rows in the
    // order the answers were made, all before the commit).
    for (;;) {
        const ProcessReport before = report;
        const std::int64_t pageStart = afterId;
        const std::set<std::int64_t> deferredBefore = deferred;
        const bool progressedBefore = progressed;
        try {
            // The page is read and claimed inside the transaction that handles it: on
            // PostgreSQL other workers skip these rows until it ends (commit, or rollback
            // when this worker dies), so each message is handled by one worker once. It
            // begins at the first deferred message, if any: the rows between that this
            // run handled are no longer pending.
            store::Transaction tx(db);
            // A page holds up to process.batch new messages besides the deferred ones (at
            // most as many again: a balance held for long fills the pages with deferred
            // messages, and the worker then waits for it instead of reading them again).
            const std::int64_t from = deferred.empty() ? afterId : *deferred.begin() - 1;
            const int limit =
                settings.process.batch + std::min(static_cast<int>(deferred.size()), settings.process.batch);
            auto rows = inbound.pending(from, limit);
            if (rows.empty()) break;
            // A deferred message this page did not claim is another worker's now (or
            // done), unless the page ended before it.
            const std::int64_t seenUpTo = static_cast<int>(rows.size()) < limit ? INT64_MAX : rows.back().id;
            deferred.erase(deferred.begin(), deferred.upper_bound(seenUpTo));
            std::int64_t inPage = 0;
            // Balances another worker holds are not waited for while there is other
            // work: the message is deferred. After a page that could do nothing, the
            // first message waits (holding no balance lock yet, it cannot deadlock).
            bool mayWait = !progressed;
            // Two messages' bytes in memory at a time (this one's, the next one's on the
            // helper): memory is bounded by the largest message, not by the page.
            std::future<processing::PreparedMail> next = prepareAhead(rows.front());
            for (std::size_t k = 0; k < rows.size(); ++k) {
                auto& row = rows[k];
                std::optional<processing::PreparedMail> prepared;
                if (next.valid()) prepared = next.get();
                next = k + 1 < rows.size() ? prepareAhead(rows[k + 1]) : std::future<processing::PreparedMail>();
                if (prepared) row.raw = std::move(prepared->raw);
                else inbound.rawInto(row.id, row.raw);
                // Only a request (by what it says) writes nothing to the outbox but its
                // answer: any other message may queue other mail (an ID mail, a notice),
                // which must follow the answers before it, inside its own savepoint.
                const bool request = prepared && prepared->parseFailure.empty() && !prepared->classifyError &&
                                     prepared->hygiene == mail::Classification::Request;
                if (!request || inMessage) answers.flush();
                store::Savepoint message(db, "message");
                try {
                    processing::MessageHandler handler(db, settings, templates, log, now, report,
                                                       inMessage ? nullptr : &core, inMessage ? nullptr : &answers);
                    handler.setBalanceWait(mayWait ? store::LockWait::OnlyWhenHoldingNone : store::LockWait::Never);
                    handler.handle(row, prepared ? &*prepared : nullptr);
                } catch (const store::BalanceBusy& e) {
                    // Another worker holds this message's contract balance until its page
                    // commits: this message waits for a later page, the others go on.
                    message.rollback();
                    answers.drop(row.id);
                    std::string().swap(row.raw);
                    log.debug("inbound #" + std::to_string(row.id) + ": " + e.what() + "; deferred to a later page");
                    deferred.insert(row.id);
                    afterId = std::max(afterId, row.id);
                    continue;
                } catch (const processing::DeferredAnswerFailed&) {
                    message.rollback();
                    throw;
                } catch (...) {
                    message.rollback();  // this message's work only
                    answers.drop(row.id);
                    answers.flush();
                    tx.commit();
                    progressAdvance(progress, inPage);
                    throw;
                }
                message.release();
                std::string().swap(row.raw);
                afterId = std::max(afterId, row.id);
                ++inPage;
                mayWait = false;
            }
            answers.flush();
            crashPoint("process.before_commit");
            tx.commit();
            progressAdvance(progress, inPage);
            progressed = inPage > 0;
        } catch (const processing::DeferredAnswerFailed& e) {
            // Nothing of this page is committed (the transaction rolled back on the way
            // out): do it again, this time each answer inside its message.
            if (inMessage) throw;  // cannot happen: nothing is deferred then
            log.warning(std::string("process: rendering ") + e.what() +
                        "; the page is rolled back and done again, each answer inside its message");
            report = before;
            afterId = pageStart;
            deferred = deferredBefore;
            progressed = progressedBefore;
            inMessage = true;
        }
    }
    return report;
}

std::vector<DryRunOutcome> processDryRun(store::Database& db, const config::Settings& settings,
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
