// The outbox: composed mail waiting for the SMTP server. A row is written in the
// same transaction as the change that caused it, holds the final bytes (a retry
// sends the same bytes with the same Message-ID), and ends as sent or parked.
#pragma once

#include <cstdint>
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
    std::string bytes;
    std::string state = "queued";  ///< queued | sent | parked
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

    /// Queued rows due at `now`, oldest first, at most `limit`, with ids after afterId.
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
    void markRetry(std::int64_t id, int attempts, std::int64_t nextAttemptAt, const std::string& reply);
    void markParked(std::int64_t id, int attempts, const std::string& reply);

    OutboxCounts counts(std::int64_t now);
    std::vector<OutboxRow> all();  ///< for tests and status; bytes included

private:
    Database& db_;
};

}  // namespace sm::store
