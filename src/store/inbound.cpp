#include "store/inbound.h"

#include <set>
#include <stdexcept>

#include <Poco/Data/LOB.h>
#include <Poco/Data/RecordSet.h>
#include <Poco/DigestEngine.h>
#include <Poco/Crypto/DigestEngine.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {

std::string sha256Hex(const std::string& bytes) {
    // OpenSSL's (through POCO Crypto) uses the CPU's SHA instructions: 2.7 us for a
    // 2.5 KB mail where Foundation's portable SHA2Engine took 11.6 (a sixth of fetch).
    // One engine per thread: setting one up costs as much as the hash (digest()
    // resets it for the next).
    thread_local Poco::Crypto::DigestEngine engine("SHA256");
    engine.update(bytes.data(), static_cast<unsigned>(bytes.size()));
    return Poco::DigestEngine::digestToHex(engine.digest());
}

bool Inbound::known(const std::string& source, std::int64_t uidValidity, const std::string& key,
                    const std::string& sha256) {
    // Two lookups, each by its index (one query with OR read the whole table, raw
    // mail included, for every message fetched); kept prepared, run per message.
    if (db_.cached("SELECT 1 FROM inbound WHERE source = ? AND uid_validity = ? AND source_key = ?")
            .bind(1, source)
            .bind(2, uidValidity)
            .bind(3, key)
            .step())
        return true;
    return db_.cached("SELECT 1 FROM inbound WHERE source = ? AND sha256 = ?").bind(1, source).bind(2, sha256).step();
}

// The row and, in inbound_raw, its bytes (migration 11: the end state process writes
// then rewrites a small row, not the mail).
#define SM_INBOUND_INSERT                                                                          \
    "INSERT INTO inbound (source, uid_validity, source_key, message_id, sha256, size, state, reason, " \
    "sender, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

std::int64_t Inbound::insert(const InboundRow& row) {
    const std::int64_t at = Database::nowSeconds();
    auto bindRow = [&](CachedQuery& q) {
        q.bind(1, row.source).bind(2, row.uidValidity).bind(3, row.sourceKey).bind(4, row.messageId);
        q.bind(5, row.sha256).bind(6, row.size).bind(7, row.state).bind(8, row.reason).bind(9, row.sender);
        q.bind(10, at);
    };
    if (db_.dialect() == Dialect::PostgreSQL) {
        // One statement, one round trip: the row, then its bytes under the new id.
        auto q = db_.cached("WITH stored AS (" SM_INBOUND_INSERT " RETURNING id) INSERT INTO inbound_raw "
                            "(inbound_id, raw) SELECT id, CAST(? AS BYTEA) FROM stored RETURNING inbound_id");
        bindRow(q);
        q.bindBlob(11, row.raw);
        if (!q.step()) throw std::runtime_error("inbound: the stored mail's id did not come back");
        return q.int64(0);
    }
    auto q = db_.cachedInsert(SM_INBOUND_INSERT);
    bindRow(q);
    q.step();
    const std::int64_t id = q.insertedId();
    db_.cached("INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, ?)").bind(1, id).bindBlob(2, row.raw).run();
    return id;
}

std::optional<MailboxSync> Inbound::sync(const std::string& source) {
    std::string s = source;
    Statement st(db_.session());
    st << db_.sql("SELECT uid_validity, last_uid FROM mailbox_sync WHERE source = ?"), use(s);
    st.execute();
    RecordSet rs(st);
    if (!rs.moveFirst()) return std::nullopt;
    return MailboxSync{rs[0].convert<std::int64_t>(), rs[1].convert<std::int64_t>()};
}

void Inbound::setSync(const std::string& source, const MailboxSync& sync) {
    std::string s = source;
    std::int64_t uv = sync.uidValidity, last = sync.lastUid;
    int n = 0;
    db_.session() << db_.sql("SELECT COUNT(*) FROM mailbox_sync WHERE source = ?"), use(s), into(n), now;
    if (n)
        db_.session() << db_.sql("UPDATE mailbox_sync SET uid_validity = ?, last_uid = ? WHERE source = ?"), use(uv),
            use(last), use(s), now;
    else
        db_.session() << db_.sql("INSERT INTO mailbox_sync (source, uid_validity, last_uid) VALUES (?, ?, ?)"), use(s),
            use(uv), use(last), now;
}

std::vector<InboundRow> Inbound::pending(std::int64_t afterId, int limit) {
    // Without the raw bytes of large mails: a page of them would all be in memory at
    // once (rawInto() reads one message's bytes when it is handled). On PostgreSQL a
    // message's bytes up to kBytesWithPage and its duplicate check come with the page:
    // each was a round trip of its own for every message (1 worker: 11 a mail).
    const bool pg = db_.dialect() == Dialect::PostgreSQL;
    auto q = db_.cached(pg ? "SELECT id, source, uid_validity, source_key, message_id, sha256, size, state, reason, "
                             "classification, sender, fetched_at, "
                             "CASE WHEN message_id = '' THEN 0 ELSE COALESCE((SELECT MIN(o.id) FROM inbound o "
                             "WHERE o.message_id = inbound.message_id AND o.id <> inbound.id "
                             "AND o.state IN ('done', 'duplicate')), 0) END, "
                             "CASE WHEN size <= ? THEN COALESCE((SELECT raw FROM inbound_raw WHERE inbound_id = "
                             "inbound.id), CAST('' AS BYTEA)) ELSE CAST('' AS BYTEA) END "
                             "FROM inbound WHERE state = 'pending' AND id > ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
                           : "SELECT id, source, uid_validity, source_key, message_id, sha256, size, state, reason, "
                             "classification, sender, fetched_at FROM inbound WHERE state = 'pending' AND id > ? "
                             "ORDER BY id LIMIT ?");
    const int first = pg ? 2 : 1;
    if (pg) q.bind(1, kBytesWithPage);
    q.bind(first, afterId).bind(first + 1, std::int64_t{limit});
    std::vector<InboundRow> out;
    std::set<std::string> messageIds;  // the page's, to find a second row with one
    while (q.step()) {
        InboundRow r;
        r.id = q.int64(0);
        r.source = q.text(1);
        r.uidValidity = q.int64(2);
        r.sourceKey = q.text(3);
        r.messageId = q.text(4);
        r.sha256 = q.text(5);
        r.size = q.int64(6);
        r.state = q.text(7);
        r.reason = q.text(8);
        r.classification = q.text(9);
        r.sender = q.text(10);
        r.fetchedAt = q.int64(11);
        if (pg) {
            const bool again = !r.messageId.empty() && !messageIds.insert(r.messageId).second;
            r.earlierProcessed = again ? -1 : q.int64(12);
            q.blob(13, r.raw);  // empty when larger: rawInto() then
        }
        out.push_back(std::move(r));
    }
    return out;
}

bool Inbound::rawInto(std::int64_t id, std::string& out) {
    auto q = db_.cached("SELECT raw FROM inbound_raw WHERE inbound_id = ?");
    if (!q.bind(1, id).step()) return false;
    q.blob(0, out);
    return true;
}

bool Inbound::finish(std::int64_t id, const std::string& state, const std::string& classification,
                     const std::string& sender, const std::string& reason) {
    auto q = db_.cached("UPDATE inbound SET state = ?, classification = ?, sender = ?, reason = ?, processed_at = ? "
                        "WHERE id = ? AND state = 'pending'");
    q.bind(1, state).bind(2, classification).bind(3, sender).bind(4, reason).bind(5, Database::nowSeconds()).bind(6, id);
    q.run();
    return q.changes() == 1;
}

void Inbound::finishPipelined(std::int64_t id, const std::string& state, const std::string& classification,
                              const std::string& sender, const std::string& reason) {
    db_.cached("UPDATE inbound SET state = ?, classification = ?, sender = ?, reason = ?, processed_at = ? "
               "WHERE id = ? AND state = 'pending'")
        .bind(1, state)
        .bind(2, classification)
        .bind(3, sender)
        .bind(4, reason)
        .bind(5, Database::nowSeconds())
        .bind(6, id)
        .send();
}

std::optional<std::int64_t> Inbound::processedWithMessageId(const std::string& messageId, std::int64_t exceptId) {
    if (messageId.empty()) return std::nullopt;
    if (db_.dialect() == Dialect::SQLite) {
        // The earliest, as MIN() and with the state a filter (+state) on the Message-ID's
        // rows: with the state in the index seek and ORDER BY, SQLite built two temporary
        // b-trees at every run (the IN list's and the sort's), zeroing a page for each:
        // 15 % of process's main thread. Ids start at 1: 0 is none.
        auto q = db_.cached("SELECT COALESCE(MIN(id), 0) FROM inbound WHERE message_id = ? AND id <> ? AND "
                            "+state IN ('done', 'duplicate')");
        q.bind(1, messageId).bind(2, exceptId).step();
        const std::int64_t id = q.int64(0);
        if (id == 0) return std::nullopt;
        return id;
    }
    auto q = db_.cached("SELECT id FROM inbound WHERE message_id = ? AND id <> ? AND state IN ('done', 'duplicate') "
                        "ORDER BY id LIMIT 1");
    if (!q.bind(1, messageId).bind(2, exceptId).step()) return std::nullopt;
    return q.int64(0);
}

InboundCounts Inbound::counts() {
    InboundCounts c;
    db_.session() << "SELECT "
                     "COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0), "
                     "COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0), "
                     "COALESCE(SUM(CASE WHEN state = 'quarantined' THEN 1 ELSE 0 END), 0), "
                     "COALESCE(SUM(CASE WHEN state = 'rejected' THEN 1 ELSE 0 END), 0), "
                     "COALESCE(SUM(CASE WHEN state = 'duplicate' THEN 1 ELSE 0 END), 0) FROM inbound",
        into(c.pending), into(c.done), into(c.quarantined), into(c.rejected), into(c.duplicate), now;
    return c;
}

std::vector<std::pair<std::string, std::int64_t>> Inbound::unansweredCounts() {
    std::vector<std::pair<std::string, std::int64_t>> out;
    Statement st(db_.session());
    st << "SELECT classification, COUNT(*) FROM inbound WHERE state = 'done' AND reason LIKE 'unanswered:%' "
          "GROUP BY classification ORDER BY classification";
    st.execute();
    RecordSet rs(st);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext())
        out.emplace_back(rs[0].convert<std::string>(), rs[1].convert<std::int64_t>());
    return out;
}

std::optional<InboundRow> Inbound::byId(std::int64_t id) {
    Statement st(db_.session());
    st << db_.sql("SELECT source, source_key, message_id, state, reason, classification, sender, size, fetched_at "
                  "FROM inbound WHERE id = ?"),
        use(id);
    st.execute();
    RecordSet rs(st);
    if (!rs.moveFirst()) return std::nullopt;
    InboundRow r;
    r.id = id;
    r.source = rs[0].convert<std::string>();
    r.sourceKey = rs[1].convert<std::string>();
    r.messageId = rs[2].convert<std::string>();
    r.state = rs[3].convert<std::string>();
    r.reason = rs[4].convert<std::string>();
    r.classification = rs[5].convert<std::string>();
    r.sender = rs[6].convert<std::string>();
    r.size = rs[7].convert<std::int64_t>();
    r.fetchedAt = rs[8].convert<std::int64_t>();
    return r;
}

std::vector<InboundRow> Inbound::list(const std::string& state) {
    // "ignored" rows are done rows; which of them were ignored is decided by isIgnored().
    std::string stored = state == "ignored" ? "done" : state;
    Statement st(db_.session());
    st << db_.sql("SELECT id, source, uid_validity, source_key, message_id, sha256, size, state, reason, "
                  "classification, sender, fetched_at FROM inbound WHERE (? = '' OR state = ?) ORDER BY id"),
        use(stored), use(stored);
    st.execute();
    RecordSet rs(st);
    std::vector<InboundRow> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        InboundRow r;
        r.id = rs[0].convert<std::int64_t>();
        r.source = rs[1].convert<std::string>();
        r.uidValidity = rs[2].convert<std::int64_t>();
        r.sourceKey = rs[3].convert<std::string>();
        r.messageId = rs[4].convert<std::string>();
        r.sha256 = rs[5].convert<std::string>();
        r.size = rs[6].convert<std::int64_t>();
        r.state = rs[7].convert<std::string>();
        r.reason = rs[8].convert<std::string>();
        r.classification = rs[9].convert<std::string>();
        r.sender = rs[10].convert<std::string>();
        r.fetchedAt = rs[11].convert<std::int64_t>();
        if (state == "ignored" && !isIgnored(r)) continue;
        out.push_back(std::move(r));
    }
    return out;
}

std::string Inbound::raw(std::int64_t id) {
    Poco::Data::BLOB blob;
    Statement st(db_.session());
    st << db_.sql("SELECT raw FROM inbound_raw WHERE inbound_id = ?"), use(id), into(blob);
    if (st.execute() == 0) return "";
    return std::string(reinterpret_cast<const char*>(blob.rawContent()), blob.size());
}

bool Inbound::reprocess(std::int64_t id) {
    auto row = byId(id);
    if (!row) return false;
    if (row->state != "quarantined" && row->state != "rejected" && !isIgnored(*row)) return false;
    std::string from = row->state;
    Statement st(db_.session());
    st << db_.sql("UPDATE inbound SET state = 'pending', reason = '', classification = '', processed_at = NULL "
                  "WHERE id = ? AND state = ?"),
        use(id), use(from);
    return st.execute() > 0;
}

bool isIgnored(const InboundRow& row) {
    // process marks every mail it decided not to answer with an "unanswered: OUTCOME: why"
    // reason (jobs/process/message_handler.cpp, unanswered()); everything else it answered.
    return row.state == "done" && row.reason.rfind("unanswered: ", 0) == 0;
}

}  // namespace sm::store
