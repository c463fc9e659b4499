#include "jobs/deliver.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <thread>

#include <Poco/String.h>

#include "jobs/crash_point.h"
#include "jobs/id_mail.h"
#include "jobs/outgoing.h"
#include "store/leases.h"
#include "store/outbox.h"

namespace sm::jobs {

std::int64_t retryDelaySeconds(const config::DeliverySettings& s, int attempts) {
    std::int64_t delay = s.retryInitialSeconds;
    for (int i = 1; i < attempts && delay < s.retryMaxSeconds; ++i) delay *= 2;
    return std::min<std::int64_t>(delay, s.retryMaxSeconds);
}

namespace {

using Clock = std::chrono::steady_clock;

/// Outcomes recorded in one transaction, at most: a commit per mail cost more than
/// the rest of the main thread's work (bench_deliver). The main thread wakes for
/// them once this many are back, when a connection has nothing left to send, or
/// after kRecordDelay; a crash before the commit sends those mails again.
constexpr std::size_t kRecordBatch = 32;
constexpr auto kRecordDelay = std::chrono::milliseconds(100);

/// SQLite's page cache while deliver runs (Run::cache_).
constexpr int kPageCacheMB = 8;

/// Mails handed to one connection and not yet back: enough that it never waits
/// for the main thread while that records a batch.
constexpr std::size_t kConnectionDepth = 2 * kRecordBatch;

/// Its recipients' lower-cased addresses: what keeps a recipient's mails on one connection.
std::vector<std::string> recipientKeys(const store::OutboxRow& row) {
    std::vector<std::string> keys;
    for (const auto& r : row.recipients) keys.push_back(Poco::toLower(r));
    return keys;
}

/// A claimed mail not yet handed to a connection; its keys made once, not on every
/// pass of the hand-out loop over the mails held back.
struct Waiting {
    store::OutboxRow row;
    std::vector<std::string> keys;
};

/// One mail on its way: handed to a connection, sent there, handed back.
struct Send {
    store::OutboxRow row;
    std::vector<std::string> keys;  // recipientKeys(row)
    int connection = 0;
    mail::DeliveryOutcome outcome;
};

/// Whether an outcome means the server is unavailable for this run. A connection
/// that broke (cut, 421) is reopened by its next mail; one that could not be
/// opened, timed out, or broke again right after being reopened is not.
bool serverUnavailableAfter(const mail::DeliveryOutcome& outcome, bool brokeBefore) {
    return outcome.serverUnavailable && (brokeBefore || !outcome.connectionLost);
}

/// The sending side: a thread per connection, each with its own transport, fed
/// by the main thread through a short queue of its own and answering through one
/// shared list. Never touches the database. All members but the threads' own
/// locals are guarded by mutex_.
class Connections {
public:
    /// transports[i] is connection i's; owned ones are destroyed (QUIT) by their
    /// own thread at its end, in parallel; a null owned entry is the caller's.
    Connections(std::vector<mail::Transport*> transports, std::vector<std::unique_ptr<mail::Transport>> owned) {
        for (std::size_t i = 0; i < transports.size(); ++i) {
            auto lane = std::make_unique<Lane>();
            lane->transport = transports[i];
            lane->owned = std::move(owned[i]);
            lanes_.push_back(std::move(lane));
        }
        for (std::size_t i = 0; i < lanes_.size(); ++i)
            lanes_[i]->thread = std::thread([this, i] {
                // "deliver-conn3" in top -H, ps -L and perf
                ::pthread_setname_np(::pthread_self(), ("deliver-conn" + std::to_string(i + 1)).substr(0, 15).c_str());
                run(*lanes_[i]);
            });
    }
    /// No further mail starts; the ones being sent finish (each bounded by the
    /// transport's timeout) before this returns.
    ~Connections() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            halted_ = true;
        }
        for (auto& lane : lanes_) lane->wake.notify_one();
        for (auto& lane : lanes_) lane->thread.join();
    }
    Connections(const Connections&) = delete;
    Connections& operator=(const Connections&) = delete;

    int size() const { return static_cast<int>(lanes_.size()); }
    /// Mails handed to connection c and not yet taken back (main thread only).
    std::size_t load(int c) const { return lanes_[static_cast<std::size_t>(c)]->handed; }
    bool hasRoom(int c) const { return load(c) < depth_; }
    /// PostgreSQL: one mail at a time per connection, so a killed run leaves at most
    /// one sent and unmarked mail per connection to the host that takes it over.
    void oneAtATime() { depth_ = 1; }
    std::size_t inFlight() const {
        std::size_t n = 0;
        for (const auto& lane : lanes_) n += lane->handed;
        return n;
    }

    void hand(std::unique_ptr<Send> send) {
        Lane& lane = *lanes_[static_cast<std::size_t>(send->connection)];
        ++lane.handed;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            lane.waiting.push_back(std::move(send));
        }
        lane.wake.notify_one();
    }

    /// The sends done since the last call, once a batch of them is there (or a
    /// connection ran dry, or the server is unavailable), at the latest at `until`.
    std::vector<std::unique_ptr<Send>> takeDone(Clock::time_point until) {
        std::vector<std::unique_ptr<Send>> out;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            doneReady_.wait_until(lock, until, [this] { return wakeMain_; });
            wakeMain_ = false;
            out.swap(done_);
        }
        for (const auto& s : out) --lanes_[static_cast<std::size_t>(s->connection)]->handed;
        return out;
    }

    /// Takes back the mails handed out and not yet started, in the order each
    /// connection would have sent them.
    std::vector<std::unique_ptr<Send>> withdraw() {
        std::vector<std::unique_ptr<Send>> out;
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& lane : lanes_) {
            lane->handed -= lane->waiting.size();
            for (auto& send : lane->waiting) out.push_back(std::move(send));
            lane->waiting.clear();
        }
        return out;
    }

    /// True once a connection found the server unavailable: no further mail starts.
    bool serverUnavailable() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return serverUnavailable_;
    }

    /// Until this is called the main thread is woken for every outcome (it waits
    /// for the server's first answer before opening more connections).
    void recordInBatches() {
        std::lock_guard<std::mutex> lock(mutex_);
        recordBatch_ = kRecordBatch;
    }

private:
    struct Lane {
        mail::Transport* transport = nullptr;
        std::unique_ptr<mail::Transport> owned;
        std::deque<std::unique_ptr<Send>> waiting;
        std::size_t handed = 0;  // the main thread's count: handed and not yet back
        std::condition_variable wake;
        std::thread thread;
    };

    void run(Lane& lane) {
        bool brokeBefore = false;  // this connection's last mail broke it
        for (;;) {
            std::unique_ptr<Send> send;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                lane.wake.wait(lock, [&] { return halted_ || serverUnavailable_ || !lane.waiting.empty(); });
                if (halted_ || serverUnavailable_) break;
                send = std::move(lane.waiting.front());
                lane.waiting.pop_front();
            }
            const store::OutboxRow& row = send->row;
            try {
                send->outcome = lane.transport->send(mail::Envelope{row.envelopeFrom, row.recipients}, row.messageId,
                                                     row.bytes);
            } catch (const std::exception& e) {
                // Not a delivery outcome (transports return those): out of memory and the like.
                send->outcome = mail::DeliveryOutcome{mail::DeliveryStatus::TemporaryFailure,
                                                      std::string("transport failed: ") + e.what(), true};
            }
            crashPoint("deliver.after_send");
            const bool unavailable = serverUnavailableAfter(send->outcome, brokeBefore);
            brokeBefore = send->outcome.serverUnavailable;
            bool wake = false;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                done_.push_back(std::move(send));
                serverUnavailable_ = serverUnavailable_ || unavailable;
                wake = unavailable || lane.waiting.empty() || done_.size() >= recordBatch_;
                wakeMain_ = wakeMain_ || wake;
            }
            if (unavailable)
                for (auto& other : lanes_) other->wake.notify_one();
            if (wake) doneReady_.notify_one();
        }
        lane.owned.reset();
    }

    std::vector<std::unique_ptr<Lane>> lanes_;
    std::size_t depth_ = kConnectionDepth;  // main thread only
    mutable std::mutex mutex_;
    std::condition_variable doneReady_;
    std::vector<std::unique_ptr<Send>> done_;
    std::size_t recordBatch_ = 1;
    bool wakeMain_ = false;
    bool halted_ = false;
    bool serverUnavailable_ = false;
};

/// The main thread's side of a run: claims pages of due rows, hands each mail to
/// a connection, records the outcomes that come back.
class Run {
public:
    Run(store::Database& db, const config::DeliverySettings& settings, std::vector<mail::Transport*> transports,
        std::vector<std::unique_ptr<mail::Transport>> owned, Poco::Logger& log, int limit, ProgressSink* progress,
        const OutboxRenderer* renderer)
        : db_(db), settings_(settings), log_(log), limit_(limit), progress_(progress), renderer_(renderer),
          cache_(db, kPageCacheMB), relaxed_(db), outbox_(db),
          claimer_(store::makeLeaseHolder()), shared_(db.dialect() == store::Dialect::PostgreSQL),
          giveBack_{outbox_, claimer_, shared_},
          broken_(transports.size(), false), connections_(std::move(transports), std::move(owned)) {
        report_.perConnection.assign(static_cast<std::size_t>(connections_.size()), 0);
        if (shared_) connections_.oneAtATime();
    }

    DeliveryReport go() {
        if (progress_) {
            const std::int64_t due = outbox_.counts(store::Database::nowSeconds()).due;
            progress_->begin(limit_ > 0 ? std::min<std::int64_t>(due, limit_) : due);
        }
        if (int back = shared_ ? outbox_.releaseClaimsOfDeadWorkers() : 0)
            log_.warning(std::to_string(back) + " mails claimed by a killed deliver run of this machine are due again");
        for (;;) {
            db_.checkInterrupted();  // a run that lost its job lease stops before the next mail
            renewClaims();
            if (connections_.serverUnavailable()) {
                for (auto& send : connections_.withdraw()) release(*send);  // not started: stays queued, untouched
            } else if (!limitReached()) {
                if (!exhausted_ && wantPage()) takePage();
                handOut();
            }
            const bool noMore = connections_.serverUnavailable() || limitReached() || (exhausted_ && backlog_.empty());
            if (noMore && connections_.inFlight() == 0) break;
            auto done = connections_.takeDone(Clock::now() + kRecordDelay);
            record(done);
        }
        // A break no mail went through after (on any connection) leaves the server in doubt.
        report_.serverUnavailable = connections_.serverUnavailable() || unresolvedBreak_;
        if (report_.serverUnavailable) report_.lastError = unavailableReply_;
        if (connections_.size() > 1) {
            std::string counts;
            for (int n : report_.perConnection) counts += (counts.empty() ? "" : ", ") + std::to_string(n);
            log_.information("mails per connection: " + counts);
        }
        return report_;
    }

private:
    bool limitReached() const { return limit_ > 0 && handedOut_ >= limit_; }

    /// Another page when none is waiting, or when a connection is idle while every
    /// waiting mail is held back for its recipient's connection (up to two pages).
    bool wantPage() const {
        if (backlog_.empty()) return true;
        if (backlog_.size() >= 2 * static_cast<std::size_t>(settings_.batch)) return false;
        for (int c = 0; c < usableConnections(); ++c)
            if (connections_.load(c) == 0) return true;
        return false;
    }

    /// Only the first connection until the server has answered once: an
    /// unreachable server costs one mail's attempt, not one per connection.
    int usableConnections() const { return reached_ ? connections_.size() : 1; }

    void takePage() {
        const std::int64_t now = store::Database::nowSeconds();
        std::vector<store::OutboxRow> rows;
        if (!shared_) {
            // SQLite: this run holds the deliver job lease, so no other run reads the
            // outbox; a claim would guard nothing and cost a rewrite of every row.
            rows = outbox_.due(now, settings_.batch, afterId_);
        } else {
            // Several workers share the queue: each claims a page for claimSeconds
            // (renewed while it sends) and sends only what it claimed. A worker that dies
            // keeps its claims until they expire; then another takes them over (a mail
            // accepted by the server just before the death goes out once more, same
            // Message-ID). Claims still held when this run ends (server unavailable,
            // --limit) are given back. While an older page is held, its earlier expiry
            // stays the one renewClaims() goes by (it renews every page at once).
            const std::int64_t until = now + settings_.claimSeconds;
            if (backlog_.empty() && connections_.inFlight() == 0) claimUntil_ = until;
            rows = outbox_.claim(now, settings_.batch, afterId_, claimer_, until);
        }
        if (rows.empty()) exhausted_ = true;
        for (auto& row : rows) {
            afterId_ = row.id;
            auto keys = recipientKeys(row);
            backlog_.push_back(Waiting{std::move(row), std::move(keys)});
        }
    }

    /// A third of the claim used: extend it. Past its end, another worker may have
    /// taken rows over: keep only what is still ours.
    void renewClaims() {
        if (claimUntil_ == 0) return;
        const std::int64_t at = store::Database::nowSeconds();
        const int ttl = settings_.claimSeconds;
        if (at < claimUntil_ - 2 * ttl / 3) return;
        const bool lapsed = at >= claimUntil_;
        claimUntil_ = at + ttl;
        outbox_.renewClaims(claimer_, claimUntil_);
        if (!lapsed) return;
        auto takenOver = [this](const store::OutboxRow& row) {
            if (outbox_.stillClaimed(row.id, claimer_)) return false;
            log_.warning("not sending " + row.messageId + ": its claim lapsed and another worker took it");
            ++report_.takenOver;
            return true;
        };
        backlog_.remove_if([&](const Waiting& w) { return takenOver(w.row); });
        for (auto& send : connections_.withdraw()) {
            if (!takenOver(send->row)) connections_.hand(std::move(send));  // same connection, same order
            else release(*send);
        }
    }

    /// Hands out waiting mails in id order while connections have room. A recipient
    /// with a mail on a connection stays there, so its mails keep their order; a mail
    /// that has to wait holds back every later mail to its recipients.
    void handOut() {
        // One mail until the server has answered: the recipients of a full first
        // connection would otherwise stay on it for the whole run.
        if (!reached_ && connections_.inFlight() > 0) return;
        std::unordered_set<std::string> heldBack;
        for (auto it = backlog_.begin(); it != backlog_.end() && !limitReached();) {
            int target = -1;
            bool wait = false;
            const auto& keys = it->keys;
            for (const auto& key : keys) {
                if (heldBack.count(key)) {
                    wait = true;
                    break;
                }
                const auto on = onConnection_.find(key);
                if (on == onConnection_.end()) continue;
                if (target >= 0 && target != on->second.connection) {
                    wait = true;  // its recipients are on two connections: wait until one is done
                    break;
                }
                target = on->second.connection;
            }
            if (!wait && target < 0) target = leastLoaded();
            if (wait || target < 0 || !connections_.hasRoom(target)) {
                heldBack.insert(keys.begin(), keys.end());
                if (leastLoaded() < 0) return;  // every connection is full
                ++it;
                continue;
            }
            if (!ready(it->row)) {
                it = backlog_.erase(it);  // parked: it cannot be rendered (its recipients stay free)
                continue;
            }
            for (const auto& key : keys) {
                auto& on = onConnection_[key];
                on.connection = target;
                ++on.mails;
            }
            auto send = std::make_unique<Send>();
            send->row = std::move(it->row);
            send->keys = std::move(it->keys);
            send->connection = target;
            it = backlog_.erase(it);
            ++handedOut_;
            connections_.hand(std::move(send));
            if (!reached_) return;
        }
    }

    /// Makes a mail ready to send, in the main thread: an ID mail queued without its
    /// bytes is rendered (same Message-ID on every attempt), and with
    /// delivery.bounce_address the return path names the outbox row (VERP), so a
    /// bounce can be matched to the mail we sent. False: it cannot be rendered and
    /// is parked with the reason.
    bool ready(store::OutboxRow& row) {
        try {
            if (row.bytes.empty()) {
                if (!renderer_) throw RenderError("outbox mail #" + std::to_string(row.id) + " holds no bytes");
                row.bytes = renderer_->bytesOf(row);
            }
        } catch (const RenderError& e) {
            outbox_.markParked(row.id, row.attempts, e.what());
            ++report_.parked;
            log_.error("parked " + row.messageId + ": " + e.what());
            progressAdvance(progress_);
            return false;
        }
        if (!settings_.bounceAddress.empty()) row.envelopeFrom = verpReturnPath(settings_.bounceAddress, row.id);
        return true;
    }

    /// The usable connection with the fewest mails and room for one more; -1 if none.
    int leastLoaded() const {
        int best = -1;
        for (int c = 0; c < usableConnections(); ++c)
            if (connections_.hasRoom(c) && (best < 0 || connections_.load(c) < connections_.load(best))) best = c;
        return best;
    }

    /// A mail is back (or withdrawn): its recipients are free to go to any connection.
    void release(const Send& send) {
        for (const auto& key : send.keys) {
            const auto on = onConnection_.find(key);
            if (on != onConnection_.end() && --on->second.mails == 0) onConnection_.erase(on);
        }
    }

    /// Commits the outcomes that came back, one transaction for all of them (a crash
    /// before the commit sends them again, same Message-ID: at least once).
    void record(std::vector<std::unique_ptr<Send>>& done) {
        if (done.empty()) return;
        {
            store::Transaction tx(db_);
            for (const auto& send : done) mark(*send);
            tx.commit();
        }
        for (const auto& send : done) {
            release(*send);
            ++report_.perConnection[static_cast<std::size_t>(send->connection)];
            progressAdvance(progress_);
        }
    }

    void mark(const Send& send) {
        const store::OutboxRow& row = send.row;
        const mail::DeliveryOutcome& outcome = send.outcome;
        const int attempts = row.attempts + 1;
        const std::int64_t now = store::Database::nowSeconds();
        auto recipients = [&row] {
            std::string to;
            for (const auto& r : row.recipients) to += (to.empty() ? "" : ",") + r;
            return to;
        };
        switch (outcome.status) {
            case mail::DeliveryStatus::Sent:
                outbox_.markSent(row.id, outcome.reply);
                outbox_.forgetIds(row);  // an ID mail keeps its headers and a digest
                ++report_.sent;
                // The line for every mail sent is built only when it is written: at the
                // usual level (notice) it is not, and building it cost the main thread a
                // few allocations per mail (bench_deliver).
                if (log_.information())
                    log_.information("sent " + row.messageId + " (" + row.kind + ") to " + recipients());
                break;
            case mail::DeliveryStatus::PermanentFailure:
                outbox_.markParked(row.id, attempts, outcome.reply);
                ++report_.parked;
                log_.warning("parked " + row.messageId + " (" + row.kind + ") to " + recipients() + ": " + outcome.reply);
                break;
            case mail::DeliveryStatus::TemporaryFailure:
                if (now - row.createdAt >= settings_.giveUpAfterSeconds) {
                    std::string why = "gave up after " + std::to_string(attempts) + " attempts: " + outcome.reply;
                    outbox_.markParked(row.id, attempts, why);
                    ++report_.parked;
                    log_.warning("parked " + row.messageId + " to " + recipients() + ": " + why);
                } else {
                    std::int64_t next = now + retryDelaySeconds(settings_, attempts);
                    outbox_.markRetry(row.id, attempts, next, outcome.reply);
                    ++report_.retried;
                    log_.warning("will retry " + row.messageId + " to " + recipients() + " in " + std::to_string(next - now) +
                                 " s: " + outcome.reply);
                }
                break;
        }
        if (outcome.status != mail::DeliveryStatus::Sent) report_.lastError = outcome.reply;
        const auto c = static_cast<std::size_t>(send.connection);
        auto which = [&] { return "connection " + std::to_string(c + 1) + " of " + std::to_string(connections_.size()); };
        if (outcome.serverUnavailable) {
            unavailableReply_ = outcome.reply;
            unresolvedBreak_ = true;
            if (serverUnavailableAfter(outcome, broken_[c]))
                log_.error("stopping delivery: " + which() + " found the server unavailable: " + outcome.reply);
            else
                log_.warning(which() + " broke: " + outcome.reply + "; reopening it for its next mail");
        } else {
            if (broken_[c]) log_.notice(which() + " reopened");
            // PostgreSQL: another host takes over a killed run's claims and sends what
            // it had not marked, so each outcome is committed at once there.
            if (!reached_ && !shared_) connections_.recordInBatches();
            reached_ = true;
            unresolvedBreak_ = false;
        }
        broken_[c] = outcome.serverUnavailable;
    }

    store::Database& db_;
    const config::DeliverySettings& settings_;
    Poco::Logger& log_;
    const int limit_;
    ProgressSink* const progress_;
    const OutboxRenderer* const renderer_;
    // A small page cache (as process has): each due row is read once and written once.
    // With the connection's 64 MB the main thread's cost grew with the queue: a mark
    // grows its row (sent_at, last_reply), so now and then a page splits; SQLite orders
    // the split's pages by swapping their numbers through a temporary one (the lock-byte
    // page's, 262,145 with 4 KB pages), and the commit after it truncates the cache back
    // to the file's size by scanning every bucket of its hash table (gdb: the cache's
    // highest key set to 262,145 by sqlite3PcacheMove under sqlite3BtreeInsert in a
    // mark). perf, one connection, 40,000 mails: about 30 % of the
    // main thread in that scan, 26-31 us a mail; 18-22 with 8 MB.
    store::PageCacheLimit cache_;
    // Each outcome is committed as soon as it is known, without an fsync of its own:
    // a crash of this process loses none, a power cut at worst a few "sent" marks
    // (those mails go out again, same Message-ID); a queued mail is never lost. An
    // fsync per mail was 30-40 % of the time of a run (bench_deliver).
    store::RelaxedDurability relaxed_;
    store::Outbox outbox_;
    const std::string claimer_;
    const bool shared_;  // PostgreSQL: several deliver runs share the outbox through claims
    struct GiveBack {
        store::Outbox& outbox;
        const std::string& claimer;
        bool shared;
        ~GiveBack() {
            try {
                if (shared) outbox.renewClaims(claimer, 0);
            } catch (...) {
                // They expire on their own.
            }
        }
    } giveBack_;
    DeliveryReport report_;
    // Claimed, not yet handed out, in id order. A list: mails leave it from anywhere (a
    // held-back recipient's stay while later ones go), and a deque's erase in the
    // middle moved up to half of its rows each time (bench_deliver, 4 connections).
    std::list<Waiting> backlog_;
    std::int64_t afterId_ = 0;
    std::int64_t claimUntil_ = 0;
    bool exhausted_ = false;  // a claim found no more due rows
    bool reached_ = false;    // the server has answered once
    int handedOut_ = 0;
    struct OnConnection {
        int connection = 0;
        int mails = 0;  // handed to it and not yet back
    };
    std::unordered_map<std::string, OnConnection> onConnection_;  // by recipient key
    std::vector<bool> broken_;                          // by connection: its last mail broke it
    bool unresolvedBreak_ = false;  // a connection broke and no mail went through since
    std::string unavailableReply_;
    // Last: stopped and joined first, so no mail is still being sent when the
    // claims are given back.
    Connections connections_;
};

}  // namespace

DeliveryReport deliver(store::Database& db, const config::DeliverySettings& settings, const NewConnection& newConnection,
                       Poco::Logger& log, int limit, ProgressSink* progress, const OutboxRenderer* renderer) {
    const int n = std::max(1, settings.connections);
    std::vector<std::unique_ptr<mail::Transport>> owned;
    std::vector<mail::Transport*> transports;
    for (int i = 0; i < n; ++i) {
        owned.push_back(newConnection());
        transports.push_back(owned.back().get());
    }
    if (n > 1) log.information("sending over " + std::to_string(n) + " connections to " + transports[0]->describe());
    return Run(db, settings, std::move(transports), std::move(owned), log, limit, progress, renderer).go();
}

DeliveryReport deliver(store::Database& db, const config::DeliverySettings& settings, mail::Transport& transport,
                       Poco::Logger& log, int limit, ProgressSink* progress, const OutboxRenderer* renderer) {
    std::vector<std::unique_ptr<mail::Transport>> owned(1);
    return Run(db, settings, {&transport}, std::move(owned), log, limit, progress, renderer).go();
}

}  // namespace sm::jobs
