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

#include <Poco/Exception.h>
#include <Poco/NullChannel.h>

namespace sm::jobs {
namespace {

// Something failed in a page done without savepoints: it is done again with them.
class PageToRedo : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::string describe(const std::exception& e) {
    if (const auto* poco = dynamic_cast<const Poco::Exception*>(&e)) return poco->displayText();
    return e.what();
}

// One run's pages. A page of messages (process.batch) is one transaction, each
// message inside it its own savepoint: one fsync per page instead of one per
// message (about half of a run's time), and still all or nothing per message. A
// crash before the commit loses the page's work and the next run does it again; as
// the page holds everything a message causes (incident, debit, reply in the outbox,
// its own end state), nothing is done twice. A message whose handling throws is
// rolled back alone; the page so far is committed, then the error goes up. On
// PostgreSQL a page first goes without the savepoints, and is done again with them
// when anything in it fails (optimistic_), with the same end.
// A request's answer renders on the second core while this thread writes the next
// message, and is inserted after that message's savepoint (outbox rows in the order
// the answers were made, all before the commit).
class Pages {
public:
    Pages(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
          Poco::Logger& log, const Poco::Timestamp& now, ProcessReport& report, ProgressSink* progress)
        : db_(db), settings_(settings), templates_(templates), log_(log), now_(now), report_(report),
          progress_(progress), inbound_(db), core_(templates.directory()), outbox_(db), answers_(db, outbox_) {
        if (progress_) progress_->begin(inbound_.counts().pending);
    }

    /// Claims, handles and commits the next page; false when none is left.
    bool next() {
        const Position before = position();
        try {
            return handlePage();
        } catch (const processing::DeferredAnswerFailed& e) {
            // Nothing of this page is committed (the transaction rolled back on the way
            // out): do it again, this time each answer rendered here and inserted inside
            // its message, so the failure ends the run as it always did (that message
            // rolled back alone, the page before it committed, the error raised).
            if (inMessage_) throw;  // cannot happen: nothing is deferred then
            log_.warning(std::string("process: rendering ") + e.what() +
                         "; the page is rolled back and done again, each answer inside its message");
            restore(before);
            inMessage_ = true;
            return true;
        } catch (const store::UnconfirmedWorkFailed& e) {
            redo(before, e.what());
            return true;
        } catch (const PageToRedo& e) {
            redo(before, e.what());
            return true;
        }
    }

private:
    // Where the run stands between pages: what a page done again starts from.
    struct Position {
        ProcessReport report;
        std::int64_t afterId;
        std::set<std::int64_t> deferred;
        bool progressed;
    };
    Position position() const { return {report_, afterId_, deferred_, progressed_}; }
    void restore(const Position& p) {
        report_ = p.report;
        afterId_ = p.afterId;
        deferred_ = p.deferred;
        progressed_ = p.progressed;
    }

    bool handlePage() {
        // The page is read and claimed inside the transaction that handles it: on
        // PostgreSQL other workers skip these rows until it ends (commit, or rollback
        // when this worker dies), so each message is handled by one worker once. It
        // begins at the first deferred message, if any: the rows between that this
        // run handled are no longer pending. It holds up to process.batch new messages
        // besides the deferred ones (at most as many again: a balance held for long
        // fills the pages with deferred messages, and the worker then waits for it
        // instead of reading them again).
        store::Transaction tx(db_);
        const std::int64_t from = deferred_.empty() ? afterId_ : *deferred_.begin() - 1;
        const int limit =
            settings_.process.batch + std::min(static_cast<int>(deferred_.size()), settings_.process.batch);
        auto rows = inbound_.pending(from, limit);
        if (rows.empty()) return false;
        // A deferred message this page did not claim is another worker's now (or done),
        // unless the page ended before it.
        const std::int64_t seenUpTo = static_cast<int>(rows.size()) < limit ? INT64_MAX : rows.back().id;
        deferred_.erase(deferred_.begin(), deferred_.upper_bound(seenUpTo));
        std::int64_t inPage = 0;
        // Balances another worker holds are not waited for while there is other work:
        // the message is deferred. After a page that could do nothing, the first
        // message waits (holding no balance lock yet, it cannot deadlock).
        bool mayWait = !progressed_;
        // Two messages' bytes in memory at a time (this one's, the next one's on the
        // helper): memory is bounded by the largest message, not by the page (on
        // PostgreSQL the page also brings the bytes of its messages of at most
        // Inbound::kBytesWithPage, 32 KB: at most 6.4 MB for a page of 200).
        std::future<processing::PreparedMail> next = prepareAhead(rows.front());
        std::optional<processing::PreparedMail> nextReady;  // taken from `next` early (ReadAhead)
        ahead_.dropAll();
        for (std::size_t k = 0; k < rows.size(); ++k) {
            auto& row = rows[k];
            std::optional<processing::PreparedMail> prepared;
            if (nextReady) prepared = std::move(nextReady);
            else if (next.valid()) prepared = next.get();
            nextReady.reset();
            next = k + 1 < rows.size() ? prepareAhead(rows[k + 1]) : std::future<processing::PreparedMail>();
            ahead_.setNext(k + 1 < rows.size() ? rows[k + 1].id : 0,
                           [&next, &nextReady]() -> const processing::PreparedMail* {
                               if (!nextReady && next.valid()) nextReady = next.get();
                               return nextReady ? &*nextReady : nullptr;
                           });
            if (prepared) row.raw = std::move(prepared->raw);
            else inbound_.rawInto(row.id, row.raw);
            const bool handled = handleMessage(tx, row, prepared, mayWait, inPage);
            ahead_.dropUpTo(row.id);
            if (!handled) continue;  // deferred
            ++inPage;
            mayWait = false;
        }
        ahead_.dropAll();
        answers_.flush();
        crashPoint("process.before_commit");
        tx.commit();
        progressAdvance(progress_, inPage);
        progressed_ = inPage > 0;
        return true;
    }

    // Something failed in a page done without savepoints: nothing of it is committed
    // (the transaction rolled back on the way out). It is done again, and the rest of
    // the run too, each message in its own savepoint and its writes confirmed before
    // the next begins, so that the failure ends the run as it always did: that message
    // rolled back alone, the page before it committed, the error raised.
    void redo(const Position& before, const std::string& why) {
        db_.checkInterrupted();  // a statement cancelled by a lost lease: the run stops
        if (!optimistic_) throw std::logic_error("process: a page to do again, but it had savepoints: " + why);
        log_.warning("process: " + why + "; the page is rolled back and done again, each message in its savepoint");
        answers_.dropAll();
        ahead_.dropAll();
        restore(before);
        optimistic_ = false;
    }

    // One message. False when it was deferred (another worker holds its contract's
    // balance). In its own savepoint: when handling throws, the message is rolled back
    // alone, the page before it (inPage messages) committed, and the error goes up; a
    // DeferredAnswerFailed goes up with nothing committed. Optimistic (PostgreSQL, see
    // optimistic_): no savepoint, and anything that fails has the page done again.
    bool handleMessage(store::Transaction& tx, store::InboundRow& row,
                       std::optional<processing::PreparedMail>& prepared, bool mayWait, std::int64_t inPage) {
        // Only a request (by what it says) writes nothing to the outbox but its answer:
        // any other message may queue other mail (an ID mail, a notice), which must
        // follow the answers before it, inside its own savepoint.
        const bool request = prepared && prepared->parseFailure.empty() && !prepared->classifyError &&
                             prepared->hygiene == mail::Classification::Request;
        if (!request || inMessage_) answers_.flush();
        const bool optimistic = optimistic_ && !inMessage_;
        std::optional<store::Savepoint> message;
        if (!optimistic) message.emplace(db_, "message");
        const std::uint64_t sentBefore = db_.statementsSent();
        try {
            processing::MessageHandler handler(db_, settings_, templates_, log_, now_, report_,
                                               inMessage_ ? nullptr : &core_, inMessage_ ? nullptr : &answers_);
            handler.setBalanceWait(mayWait ? store::LockWait::OnlyWhenHoldingNone : store::LockWait::Never);
            if (optimistic) handler.setReadAhead(&ahead_);
            handler.handle(row, prepared ? &*prepared : nullptr);
            // On PostgreSQL the message's writes went without waiting. In its savepoint,
            // their errors come back with the RELEASE and are this message's (rolled back
            // alone, below). Optimistic, they go to the server now and run while this
            // thread reads the next message, and come back with that one's first round
            // trip (one round trip a message instead of two), an error as
            // UnconfirmedWorkFailed.
            if (message) message->release();
            else db_.pushUnconfirmed();
        } catch (const store::BalanceBusy& e) {
            // Another worker holds this message's contract balance until its page
            // commits: this message waits for a later page, the others go on. A request
            // reads its balance lock before it writes anything, so without a savepoint
            // there is nothing of it to undo; if it had written, the page is done again.
            if (message) message->rollback();
            else if (db_.statementsSent() != sentBefore)
                throw PageToRedo("inbound #" + std::to_string(row.id) + " wrote before its balance lock");
            answers_.drop(row.id);
            std::string().swap(row.raw);
            log_.debug("inbound #" + std::to_string(row.id) + ": " + e.what() + "; deferred to a later page");
            deferred_.insert(row.id);
            afterId_ = std::max(afterId_, row.id);
            return false;
        } catch (const processing::DeferredAnswerFailed&) {
            if (message) message->rollback();
            throw;  // the whole page is done again (next())
        } catch (const store::UnconfirmedWorkFailed&) {
            throw;  // the message before failed: the whole page is done again (next())
        } catch (const store::RunInterrupted&) {
            throw;  // the run stops, its page rolled back
        } catch (const std::exception& e) {
            if (!message) throw PageToRedo("inbound #" + std::to_string(row.id) + ": " + describe(e));
            failAlone(tx, *message, row, inPage);
            throw;
        } catch (...) {
            if (!message) throw PageToRedo("inbound #" + std::to_string(row.id) + ": an unknown error");
            failAlone(tx, *message, row, inPage);
            throw;
        }
        std::string().swap(row.raw);
        afterId_ = std::max(afterId_, row.id);
        return true;
    }

    // The message's work only is rolled back; the page before it is committed.
    void failAlone(store::Transaction& tx, store::Savepoint& message, const store::InboundRow& row,
                   std::int64_t inPage) {
        message.rollback();
        answers_.drop(row.id);
        answers_.flush();
        tx.commit();
        progressAdvance(progress_, inPage);
    }

    std::future<processing::PreparedMail> prepareAhead(store::InboundRow& row) {
        // A mail over process.max_message_bytes is judged by its headers alone, here.
        if (row.reason.rfind("too_large:", 0) == 0) return {};
        if (row.raw.empty()) inbound_.rawInto(row.id, row.raw);  // PostgreSQL: small ones came with the page
        return core_.run([raw = std::move(row.raw)]() mutable { return processing::prepareMail(std::move(raw)); });
    }

    store::Database& db_;
    const config::Settings& settings_;
    const mail::TemplateSet& templates_;
    Poco::Logger& log_;
    const Poco::Timestamp& now_;
    ProcessReport& report_;
    ProgressSink* progress_;
    store::Inbound inbound_;
    // The second core (jobs/process/second_core.h): the next message parsed and
    // classified, and the answers rendered and composed, while this thread writes.
    processing::SecondCore core_;
    store::Outbox outbox_;
    processing::DeferredAnswers answers_;
    // PostgreSQL pages without savepoints: the next request's reads sent while this
    // one is handled (processing::ReadAhead).
    processing::ReadAhead ahead_{db_, now_};
    std::int64_t afterId_ = 0;  // every message up to here was handled or deferred by this run
    // Messages rolled back because another worker held their contract's balance, to be
    // tried again in a later page (PostgreSQL). Holding a balance lock lasts until the
    // page commits; a worker that waited for it whenever it met one sat idle for half
    // the other's page, and two workers on contracts in random order were no faster
    // than one.
    std::set<std::int64_t> deferred_;
    bool progressed_ = true;  // the last page handled at least one message
    // Set when an answer failed to render after its message was done: from then on
    // every answer is rendered on this thread and inserted inside its own message.
    bool inMessage_ = false;
    // PostgreSQL: pages are done without a savepoint a message (SAVEPOINT and RELEASE
    // were two of a request's thirteen statements, and a subtransaction each, whose
    // ids the commit lists) and each message's writes go without waiting. Anything
    // that fails in such a page has it done again with savepoints (redo()), and the
    // rest of the run too. SQLite runs each statement at once: savepoints always.
    bool optimistic_ = db_.dialect() == store::Dialect::PostgreSQL;
};

}  // namespace

ProcessReport process(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                      Poco::Logger& log, const Poco::Timestamp& now, ProgressSink* progress) {
    ProcessReport report;
    // Each mail's rows are written once: a small page cache keeps the run's memory
    // flat however many mails wait (the 64 MB default grew with the queue).
    store::PageCacheLimit cache(db, 8);
    store::GenericPlans plans(db);  // PostgreSQL: each kept statement planned once
    Pages pages(db, settings, templates, log, now, report, progress);
    while (pages.next()) {
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
            // Every message before it in the run is kept uncommitted: the duplicate check
            // read with the page (PostgreSQL) does not see them, so it is asked again.
            row.earlierProcessed = -1;
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
