#include "store/outbox.h"

#include <stdexcept>

#include <Poco/Data/RecordSet.h>
#include <Poco/StringTokenizer.h>

#include "store/inbound.h"
#include "store/leases.h"

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {
namespace {

std::string joinLines(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += '\n';
        out += s;
    }
    return out;
}

std::vector<std::string> splitLines(const std::string& s) {
    std::vector<std::string> out;
    Poco::StringTokenizer t(s, "\n", Poco::StringTokenizer::TOK_IGNORE_EMPTY | Poco::StringTokenizer::TOK_TRIM);
    for (const auto& x : t) out.push_back(x);
    return out;
}

// A row with its bytes (migration 11 keeps them in outbox_bytes, so that a state
// change rewrites a small row): kColumns read from kFrom, the bytes "" where there
// are none (an ID mail before it is sent).
const char* kColumns =
    "id, message_id, kind, envelope_from, recipients, COALESCE(outbox_bytes.bytes, ''), state, attempts, "
    "next_attempt_at, last_reply, COALESCE(contract_ref, 0), created_at";
#define SM_OUTBOX_BYTES_JOIN " LEFT JOIN outbox_bytes ON outbox_bytes.outbox_id = outbox.id"
const char* kFrom = " FROM outbox" SM_OUTBOX_BYTES_JOIN;

std::vector<OutboxRow> rowsFrom(RecordSet& rs) {
    std::vector<OutboxRow> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        OutboxRow r;
        r.id = rs[0].convert<std::int64_t>();
        r.messageId = rs[1].convert<std::string>();
        r.kind = rs[2].convert<std::string>();
        r.envelopeFrom = rs[3].convert<std::string>();
        r.recipients = splitLines(rs[4].convert<std::string>());
        r.bytes = rs[5].convert<std::string>();
        r.state = rs[6].convert<std::string>();
        r.attempts = rs[7].convert<int>();
        r.nextAttemptAt = rs[8].convert<std::int64_t>();
        r.lastReply = rs[9].convert<std::string>();
        r.contractRef = rs[10].convert<std::int64_t>();
        r.createdAt = rs[11].convert<std::int64_t>();
        out.push_back(std::move(r));
    }
    return out;
}

#define SM_OUTBOX_INSERT                                                                              \
    "INSERT INTO outbox (message_id, kind, envelope_from, recipients, next_attempt_at, created_at, contract_ref) " \
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
const char* const kInsertRow = SM_OUTBOX_INSERT;
const char* const kInsertBytes = "INSERT INTO outbox_bytes (outbox_id, bytes) VALUES (?, ?)";
// PostgreSQL: the row and its bytes in one statement (a data-modifying WITH), its
// bytes the 8th parameter: one round trip, and an error is this mail's alone.
#define SM_OUTBOX_INSERT_WITH_BYTES_PG                                                      \
    "WITH queued AS (" SM_OUTBOX_INSERT " RETURNING id) "                                   \
    "INSERT INTO outbox_bytes (outbox_id, bytes) SELECT id, CAST(? AS TEXT) FROM queued"

/// Binds a new row's columns to an insert of kInsertRow's shape. The bound text is
/// not copied (PostgreSQL): row and recipients (its recipients joined) must live
/// until the statement has run.
void bindNewRow(CachedQuery& q, const OutboxRow& row, const std::string& recipients) {
    const std::int64_t at = Database::nowSeconds();
    q.bind(1, row.messageId).bind(2, row.kind).bind(3, row.envelopeFrom).bind(4, recipients);
    q.bind(5, row.nextAttemptAt ? row.nextAttemptAt : at).bind(6, at);
    if (row.contractRef) q.bind(7, row.contractRef);
    else q.bindNull(7);
}

}  // namespace

std::int64_t Outbox::enqueue(const OutboxRow& row) {
    // The same statement, kept prepared on both engines (activation and process
    // queue one mail per row).
    const std::string recipients = joinLines(row.recipients);
    if (!row.bytes.empty() && db_.dialect() == Dialect::PostgreSQL) {
        auto q = db_.cached(SM_OUTBOX_INSERT_WITH_BYTES_PG " RETURNING outbox_id");
        bindNewRow(q, row, recipients);
        q.bind(8, row.bytes);
        if (!q.step()) throw std::runtime_error("outbox: the queued mail's id did not come back");
        return q.int64(0);
    }
    auto q = db_.cachedInsert(kInsertRow);
    bindNewRow(q, row, recipients);
    q.step();
    const std::int64_t id = q.insertedId();
    if (!row.bytes.empty()) db_.cached(kInsertBytes).bind(1, id).bind(2, row.bytes).run();
    return id;
}

void Outbox::enqueuePipelined(const OutboxRow& row) {
    // SQLite runs every statement at once: nothing to send ahead, the same inserts.
    if (db_.dialect() != Dialect::PostgreSQL) {
        enqueue(row);
        return;
    }
    // Sent without waiting: nothing needs its id.
    const std::string recipients = joinLines(row.recipients);
    auto q = db_.cached(row.bytes.empty() ? kInsertRow : SM_OUTBOX_INSERT_WITH_BYTES_PG);
    bindNewRow(q, row, recipients);
    if (!row.bytes.empty()) q.bind(8, row.bytes);
    q.send();
}

std::vector<OutboxRow> Outbox::due(std::int64_t nowAt, int limit, std::int64_t afterId) {
    if (db_.dialect() == Dialect::SQLite) {
        // The index of queued rows walks them in id order from afterId and stops after
        // `limit` (the planner would take outbox_due and sort every due row for each
        // page); kept prepared, and the bytes copied once.
        static const std::string sql = std::string("SELECT ") + kColumns +
                                       " FROM outbox INDEXED BY outbox_queued" SM_OUTBOX_BYTES_JOIN
                                       " WHERE state = 'queued' AND next_attempt_at <= ? AND id > ? ORDER BY id LIMIT ?";
        auto q = db_.cached(sql.c_str());
        q.bind(1, nowAt).bind(2, afterId).bind(3, static_cast<std::int64_t>(limit));
        std::vector<OutboxRow> out;
        while (q.step()) {
            OutboxRow r;
            r.id = q.int64(0);
            r.messageId = q.text(1);
            r.kind = q.text(2);
            r.envelopeFrom = q.text(3);
            r.recipients = splitLines(q.text(4));
            r.bytes = q.text(5);
            r.state = q.text(6);
            r.attempts = static_cast<int>(q.int64(7));
            r.nextAttemptAt = q.int64(8);
            r.lastReply = q.text(9);
            r.contractRef = q.int64(10);
            r.createdAt = q.int64(11);
            out.push_back(std::move(r));
        }
        return out;
    }
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns + kFrom +
                  " WHERE state = 'queued' AND next_attempt_at <= ? AND id > ? ORDER BY id LIMIT ?"),
        use(nowAt), use(afterId), use(limit);
    st.execute();
    RecordSet rs(st);
    return rowsFrom(rs);
}

std::vector<OutboxRow> Outbox::claim(std::int64_t nowAt, int limit, std::int64_t afterId, const std::string& claimer,
                                     std::int64_t claimUntil) {
    std::string who = claimer;
    db_.session() << db_.sql(std::string("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT id "
                                         "FROM outbox WHERE state = 'queued' AND next_attempt_at <= ? AND "
                                         "claimed_until < ? AND id > ? ORDER BY id LIMIT ?") +
                             db_.claimClause() + ")"),
        use(who), use(claimUntil), use(nowAt), use(nowAt), use(afterId), use(limit), now;
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns + kFrom +
                  " WHERE claimed_by = ? AND claimed_until = ? AND state = 'queued' AND id > ? ORDER BY id"),
        use(who), use(claimUntil), use(afterId);
    st.execute();
    RecordSet rs(st);
    return rowsFrom(rs);
}

int Outbox::releaseClaimsOfDeadWorkers() {
    std::vector<std::string> holders;
    std::int64_t nowAt = Database::nowSeconds();
    db_.session() << db_.sql("SELECT DISTINCT claimed_by FROM outbox WHERE state = 'queued' AND claimed_until >= ?"),
        use(nowAt), into(holders), now;
    int released = 0;
    for (const auto& h : holders)
        if (holderIsDeadHere(h)) released += renewClaims(h, 0);
    return released;
}

int Outbox::renewClaims(const std::string& claimer, std::int64_t claimUntil) {
    std::string who = claimer;
    Statement st(db_.session());
    st << db_.sql("UPDATE outbox SET claimed_until = ? WHERE claimed_by = ? AND state = 'queued' AND claimed_until > 0"),
        use(claimUntil), use(who);
    return static_cast<int>(st.execute());
}

bool Outbox::stillClaimed(std::int64_t id, const std::string& claimer) {
    std::string who = claimer;
    int n = 0;
    db_.session() << db_.sql("SELECT COUNT(*) FROM outbox WHERE id = ? AND claimed_by = ? AND state = 'queued'"),
        use(id), use(who), into(n), now;
    return n > 0;
}

// The marks run once per mail on deliver's path: kept prepared (POCO prepares its
// statements again on every execute: a quarter of a mark's cost on SQLite, four
// round trips instead of one on PostgreSQL).
void Outbox::markSent(std::int64_t id, const std::string& reply) {
    db_.cached("UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?, last_reply = ?, "
               "claimed_until = 0 WHERE id = ?")
        .bind(1, Database::nowSeconds())
        .bind(2, reply)
        .bind(3, id)
        .run();
}

void Outbox::forgetIds(const OutboxRow& row) {
    if (row.kind != "id_mail") return;
    std::string digest = sha256Hex(row.bytes);
    auto end = row.bytes.find("\r\n\r\n");
    std::string head = end == std::string::npos ? std::string() : row.bytes.substr(0, end + 2);
    std::string kept = head + "\r\n[body removed after delivery: it held the Access ID and Contract ID; sha256 of the "
                              "mail as sent: " + digest + "]\r\n";
    std::int64_t id = row.id;
    db_.session() << db_.sql("INSERT INTO outbox_bytes (outbox_id, bytes) VALUES (?, ?) "
                             "ON CONFLICT (outbox_id) DO UPDATE SET bytes = excluded.bytes"),
        use(id), bind(kept), now;
    db_.session() << db_.sql("UPDATE outbox SET bytes_sha256 = ? WHERE id = ?"), use(digest), use(id), now;
}

std::optional<OutboxRow> Outbox::byMessageId(const std::string& messageId) {
    std::string m = messageId;
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns + kFrom + " WHERE message_id = ?"), use(m);
    st.execute();
    RecordSet rs(st);
    auto rows = rowsFrom(rs);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

void Outbox::markRetry(std::int64_t id, int attempts, std::int64_t nextAttemptAt, const std::string& reply) {
    if (db_.dialect() == Dialect::SQLite) {
        db_.cached("UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_reply = ?, claimed_until = 0 WHERE id = ?")
            .bind(1, static_cast<std::int64_t>(attempts)).bind(2, nextAttemptAt).bind(3, reply).bind(4, id).run();
        return;
    }
    std::string r = reply;
    db_.session() << db_.sql("UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_reply = ?, claimed_until = 0 WHERE id = ?"),
        use(attempts), use(nextAttemptAt), use(r), use(id), now;
}

void Outbox::markParked(std::int64_t id, int attempts, const std::string& reply) {
    if (db_.dialect() == Dialect::SQLite) {
        db_.cached("UPDATE outbox SET state = 'parked', attempts = ?, last_reply = ?, claimed_until = 0 WHERE id = ?")
            .bind(1, static_cast<std::int64_t>(attempts)).bind(2, reply).bind(3, id).run();
        return;
    }
    std::string r = reply;
    db_.session() << db_.sql("UPDATE outbox SET state = 'parked', attempts = ?, last_reply = ?, claimed_until = 0 WHERE id = ?"),
        use(attempts), use(r), use(id), now;
}

OutboxCounts Outbox::counts(std::int64_t nowAt) {
    OutboxCounts c;
    db_.session() << db_.sql("SELECT "
                             "COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0), "
                             "COALESCE(SUM(CASE WHEN state = 'queued' AND next_attempt_at <= ? THEN 1 ELSE 0 END), 0), "
                             "COALESCE(SUM(CASE WHEN state = 'queued' AND attempts > 0 THEN 1 ELSE 0 END), 0), "
                             "COALESCE(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), 0), "
                             "COALESCE(SUM(CASE WHEN state = 'parked' THEN 1 ELSE 0 END), 0) FROM outbox"),
        use(nowAt), into(c.queued), into(c.due), into(c.retrying), into(c.sent), into(c.parked), now;
    return c;
}

std::vector<OutboxRow> Outbox::all() {
    Statement st(db_.session());
    st << std::string("SELECT ") + kColumns + kFrom + " ORDER BY id";
    st.execute();
    RecordSet rs(st);
    return rowsFrom(rs);
}

std::vector<OutboxRow> Outbox::list(const std::string& state, const std::string& kind) {
    std::string st_ = state, kind_ = kind;
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns + kFrom +
                  " WHERE (? = '' OR state = ?) AND (? = '' OR kind = ?) ORDER BY id"),
        use(st_), use(st_), use(kind_), use(kind_);
    st.execute();
    RecordSet rs(st);
    return rowsFrom(rs);
}

std::optional<OutboxRow> Outbox::byId(std::int64_t id) {
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns + kFrom + " WHERE id = ?"), use(id);
    st.execute();
    RecordSet rs(st);
    auto rows = rowsFrom(rs);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::vector<OutboxRow> Outbox::after(std::int64_t afterId) {
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns + kFrom + " WHERE id > ? ORDER BY id"), use(afterId);
    st.execute();
    RecordSet rs(st);
    return rowsFrom(rs);
}

bool Outbox::requeueParked(std::int64_t id, const std::string& note) {
    std::string n = note;
    std::int64_t at = Database::nowSeconds();
    Statement st(db_.session());
    st << db_.sql("UPDATE outbox SET state = 'queued', next_attempt_at = ?, last_reply = ? WHERE id = ? AND state = 'parked'"),
        use(at), use(n), use(id);
    return st.execute() > 0;
}

bool Outbox::cancel(std::int64_t id, const std::string& note) {
    std::string n = note;
    Statement st(db_.session());
    st << db_.sql("UPDATE outbox SET state = 'cancelled', last_reply = ? WHERE id = ? AND state IN ('queued', 'parked')"),
        use(n), use(id);
    return st.execute() > 0;
}

}  // namespace sm::store
