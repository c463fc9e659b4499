// The inbound queue: every fetched message, raw and durable, before anything is
// changed on the server. A message is stored once per source however often it is
// fetched: the key is (source, UIDVALIDITY, UID) for IMAP and (source, file key)
// for a Maildir, and the same bytes (SHA-256) from the same source are recognised
// after a UIDVALIDITY change. The process stage reads rows in state 'pending' and
// leaves each as done, quarantined, rejected or duplicate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/database.h"

namespace sm::store {

struct InboundRow {
    std::int64_t id = 0;
    std::string source;        ///< "imap://host:port/INBOX" or "maildir:/path"
    std::int64_t uidValidity = 0;
    std::string sourceKey;     ///< the UID as text, or the Maildir key
    std::string messageId;
    std::string sha256;        ///< hex
    std::int64_t size = 0;
    std::string raw;
    std::string state = "pending";  ///< pending | done | quarantined | rejected | duplicate
    std::string reason;
    std::string classification;
    std::string sender;
    std::int64_t fetchedAt = 0;
    /// Read with the page (pending(), PostgreSQL): the earliest done or duplicate row
    /// with this row's Message-ID when the page was read, 0 for none; -1 when not read
    /// with the page, or when a row before it in the same page has the same Message-ID
    /// (handling that one makes it stale): ask processedWithMessageId() then. A caller
    /// that keeps handled rows uncommitted across pages (a dry run) asks for every row.
    std::int64_t earlierProcessed = -1;
};

struct MailboxSync {
    std::int64_t uidValidity = 0;
    std::int64_t lastUid = 0;
};

struct InboundCounts {
    std::int64_t pending = 0, done = 0, quarantined = 0, rejected = 0, duplicate = 0;
};

class Inbound {
public:
    explicit Inbound(Database& db) : db_(db) {}

    /// True if this source already holds this key (in this UIDVALIDITY) or these bytes.
    bool known(const std::string& source, std::int64_t uidValidity, const std::string& key, const std::string& sha256);
    /// Inserts the row; returns its id.
    std::int64_t insert(const InboundRow& row);

    std::optional<MailboxSync> sync(const std::string& source);
    void setSync(const std::string& source, const MailboxSync& sync);

    /// Pending rows in id order after afterId, at most limit, without their raw
    /// bytes (raw is empty: read each with rawInto() when it is handled, so that a
    /// page never holds more than one message's bytes). On PostgreSQL they are
    /// claimed for the caller's open transaction (rows another worker holds are
    /// skipped; see Database::claimClause), and two things come with the page that
    /// would otherwise cost a round trip per message: the bytes of each message of at
    /// most kBytesWithPage (a page holds at most limit times that besides), and
    /// earlierProcessed.
    std::vector<InboundRow> pending(std::int64_t afterId, int limit);
    static constexpr std::int64_t kBytesWithPage = 32 * 1024;
    /// The raw bytes of row id assigned into out (its capacity reused); false
    /// when there is no such row.
    bool rawInto(std::int64_t id, std::string& out);
    /// Ends processing of a row: only a pending row changes (returns false otherwise).
    bool finish(std::int64_t id, const std::string& state, const std::string& classification,
                const std::string& sender, const std::string& reason);
    /// The same, sent without waiting (CachedQuery::send), so without telling whether
    /// the row was pending: for process, which holds the row claimed.
    void finishPipelined(std::int64_t id, const std::string& state, const std::string& classification,
                         const std::string& sender, const std::string& reason);
    /// The earlier processed row carrying this Message-ID, if any.
    std::optional<std::int64_t> processedWithMessageId(const std::string& messageId, std::int64_t exceptId);

    InboundCounts counts();
    /// Mail deliberately left unanswered (reason "unanswered: OUTCOME: ..."), per outcome
    /// (auto_reply, bounce, list_mail, own_mail, no_return_path, spam, dmarc_fail, rate_limited).
    std::vector<std::pair<std::string, std::int64_t>> unansweredCounts();
    std::optional<InboundRow> byId(std::int64_t id);

    /// The operator's view (`supportmail inbound list`): rows in id order without
    /// their raw bytes, of one state ("" = any). "ignored" is not a stored state but
    /// the done rows process left unanswered ("unanswered: OUTCOME: why" reasons:
    /// auto-replies, list mail, spam, our own mail, rate limits): see isIgnored().
    std::vector<InboundRow> list(const std::string& state);
    /// The raw bytes of one row ("" when there is no such row).
    std::string raw(std::int64_t id);
    /// Sets a quarantined, rejected or ignored row back to pending for the next
    /// process run. Nothing it caused is undone because nothing was done: a
    /// quarantined or rejected message changed nothing but its own state, an ignored
    /// one was never answered. Returns false for any other row (a request that
    /// opened a case is never processed twice).
    bool reprocess(std::int64_t id);

private:
    Database& db_;
};

/// True for a row that process ended without answering because of what it is.
bool isIgnored(const InboundRow& row);

/// Hex SHA-256 of bytes (POCO Crypto, OpenSSL).
std::string sha256Hex(const std::string& bytes);

}  // namespace sm::store
