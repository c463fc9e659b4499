// The outbox: mail waiting for the SMTP server. A row is written in the same
// transaction as the change that caused it, holds the final bytes (a retry sends
// the same bytes with the same Message-ID) or, for an activation's ID mail, none:
// the row names the contract and deliver renders the mail when it sends it
// (jobs/id_mail.h), so the IDs are not copied here. A row ends as sent or parked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/database.h"

namespace sm::store {

struct OutboxRow {
    std::int64_t id = 0;
    std::string messageId;
    std::string kind;          ///< "id_mail", "confirmation", ...
    std::string envelopeFrom;
    std::vector<std::string> recipients;
    std::string bytes;             ///< empty: an ID mail rendered at delivery from contractRef
    std::string state = "queued";  ///< queued | sent | parked | cancelled
    int attempts = 0;
    std::int64_t nextAttemptAt = 0;
    std::string lastReply;
    std::int64_t contractRef = 0;  ///< 0 = none
    std::int64_t createdAt = 0;
};

struct OutboxCounts {
    std::int64_t queued = 0, due = 0, retrying = 0, sent = 0, parked = 0;
};

class Outbox {
public:
    explicit Outbox(Database& db) : db_(db) {}

    /// Queues a row (state queued, due now). Returns its id.
    std::int64_t enqueue(const OutboxRow& row);
    /// The same, sent without waiting (CachedQuery::send) and so without its id: for
    /// process's answers, which nothing refers to by id.
    void enqueuePipelined(const OutboxRow& row);

    /// Queued rows due at `now`, oldest first, at most `limit`, with ids after afterId.
    /// Claims nothing: for a reader that is alone (deliver on SQLite, under its job lease).
    std::vector<OutboxRow> due(std::int64_t now, int limit, std::int64_t afterId = 0);

    /// Claims up to `limit` due rows with ids after afterId for `claimer` until
    /// `claimUntil` (unix seconds) and returns them, oldest first. A row claimed by
    /// another worker whose claim has not expired is skipped; an expired claim (its
    /// worker died or stalled) is taken over. One atomic statement: two workers
    /// never claim the same row (PostgreSQL: FOR UPDATE SKIP LOCKED).
    std::vector<OutboxRow> claim(std::int64_t now, int limit, std::int64_t afterId, const std::string& claimer,
                                 std::int64_t claimUntil);
    /// Gives back the claims of workers of this machine whose process is gone
    /// (killed): due again at once instead of when their claims expire. Returns how many.
    int releaseClaimsOfDeadWorkers();
    /// Extends this claimer's claims on rows still queued; returns how many it holds.
    int renewClaims(const std::string& claimer, std::int64_t claimUntil);
    /// True while `claimer` holds the claim on row id (it was not taken over).
    bool stillClaimed(std::int64_t id, const std::string& claimer);

    void markSent(std::int64_t id, const std::string& reply);
    /// A delivered mail that held the Access ID and Contract ID (kind id_mail) keeps its
    /// header and a SHA-256 of what was sent; the body goes (`contracts` is the one place
    /// the IDs live, a resend renders the mail again). No-op for other kinds.
    void forgetIds(const OutboxRow& row);
    std::optional<OutboxRow> byMessageId(const std::string& messageId);
    void markRetry(std::int64_t id, int attempts, std::int64_t nextAttemptAt, const std::string& reply);
    void markParked(std::int64_t id, int attempts, const std::string& reply);

    OutboxCounts counts(std::int64_t now);
    std::vector<OutboxRow> all();  ///< for tests and status; bytes included

    /// The operator's queue tools (`supportmail outbox`): rows in id order, of one
    /// state and one kind when given ("" = any), bytes included.
    std::vector<OutboxRow> list(const std::string& state, const std::string& kind);
    std::optional<OutboxRow> byId(std::int64_t id);
    /// Rows with ids after afterId, in id order (what a step just queued).
    std::vector<OutboxRow> after(std::int64_t afterId);
    /// A parked row queued again, due now, its attempts kept for the record. Only a
    /// parked row changes (returns false otherwise): a sent mail is never sent twice.
    bool requeueParked(std::int64_t id, const std::string& note);
    /// A queued or parked row set to 'cancelled' (never sent). Returns false for a
    /// row in another state.
    bool cancel(std::int64_t id, const std::string& note);

private:
    Database& db_;
};

}  // namespace sm::store
