#include "store/incidents.h"

#include <Poco/Data/RecordSet.h>

#include <stdexcept>

#include "domain/requests.h"

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {
namespace {

const char* kColumns =
    "id, COALESCE(case_number, ''), contract_ref, inbound_ref, requester_email, product, usage_type, problem_type, "
    "category, severity, description, attachments, state, closure_kind, response_hours, due_at, created_at";

std::optional<IncidentRow> one(Database& db, const std::string& where, const std::string& value) {
    std::string v = value;
    Statement st(db.session());
    st << db.sql(std::string("SELECT ") + kColumns + " FROM incidents WHERE " + where), use(v);
    st.execute();
    RecordSet rs(st);
    if (!rs.moveFirst()) return std::nullopt;
    IncidentRow r;
    r.id = rs[0].convert<std::int64_t>();
    r.caseNumber = rs[1].convert<std::string>();
    r.contractRef = rs[2].convert<std::int64_t>();
    r.inboundRef = rs[3].convert<std::int64_t>();
    r.requesterEmail = rs[4].convert<std::string>();
    r.product = rs[5].convert<std::string>();
    r.usageType = rs[6].convert<std::string>();
    r.problemType = rs[7].convert<std::string>();
    r.category = rs[8].convert<std::string>();
    r.severity = rs[9].convert<std::string>();
    r.description = rs[10].convert<std::string>();
    r.attachments = rs[11].convert<std::string>();
    r.state = rs[12].convert<std::string>();
    r.closureKind = rs[13].convert<std::string>();
    r.responseHours = rs[14].convert<int>();
    r.dueAt = rs[15].convert<std::int64_t>();
    r.createdAt = rs[16].convert<std::int64_t>();
    return r;
}

}  // namespace

IncidentRow Incidents::create(IncidentRow r, const std::string& caseYear) {
    r.createdAt = Database::nowSeconds();
    // The id is drawn first, so that the insert carries the case number made from it
    // (an UPDATE after the insert rewrote the row and its case-number index entry, one
    // statement more for every request). SQLite: the id AUTOINCREMENT would
    // give, under the write lock the transaction holds (BEGIN IMMEDIATE); PostgreSQL:
    // the next value of the id's sequence, drawn 16 at a time by this connection (a
    // round trip per request was one of the eleven a request cost; case numbers stay
    // unique and never reused, with gaps where a run drew more than it used).
    if (db_.dialect() == Dialect::PostgreSQL) {
        r.id = db_.nextSerial("incidents", "id");
    } else {
        auto next = db_.cached("SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'incidents'), 0), "
                               "COALESCE((SELECT MAX(id) FROM incidents), 0)) + 1");
        if (!next.step()) throw std::runtime_error("incidents: no next id");
        r.id = next.int64(0);
    }
    r.caseNumber = domain::formatCaseNumber(std::stoi(caseYear), r.id);
    auto q = db_.cached("INSERT INTO incidents (id, case_number, contract_ref, inbound_ref, requester_email, product, "
                        "usage_type, problem_type, category, severity, description, attachments, "
                        "response_hours, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind(1, r.id).bind(2, r.caseNumber).bind(3, r.contractRef).bind(4, r.inboundRef).bind(5, r.requesterEmail);
    q.bind(6, r.product).bind(7, r.usageType).bind(8, r.problemType).bind(9, r.category).bind(10, r.severity);
    q.bind(11, r.description).bind(12, r.attachments).bind(13, std::int64_t{r.responseHours}).bind(14, r.dueAt);
    q.bind(15, r.createdAt).send();
    return r;
}

std::optional<IncidentRow> Incidents::byCaseNumber(const std::string& caseNumber) {
    return one(db_, "case_number = ?", caseNumber);
}

std::optional<IncidentRow> Incidents::byId(std::int64_t id) {
    return one(db_, "id = CAST(? AS INTEGER)", std::to_string(id));
}

std::optional<IncidentRow> Incidents::byThreadMessageId(const std::string& messageId) {
    if (messageId.empty()) return std::nullopt;
    return one(db_, "id = (SELECT incident_ref FROM case_messages WHERE message_id = ? ORDER BY id LIMIT 1)", messageId);
}

void Incidents::addMessage(std::int64_t incidentRef, const std::string& direction, const std::string& messageId,
                           std::int64_t inboundRef) {
    auto q = db_.cached("INSERT INTO case_messages (incident_ref, direction, message_id, inbound_ref, created_at) "
                        "VALUES (?, ?, ?, ?, ?)");
    q.bind(1, incidentRef).bind(2, direction).bind(3, messageId);
    if (inboundRef) q.bind(4, inboundRef);
    else q.bindNull(4);
    q.bind(5, Database::nowSeconds()).send();
}

void Incidents::addExchange(std::int64_t incidentRef, const std::string& receivedMessageId, std::int64_t inboundRef,
                            const std::string& answerMessageId) {
    if (answerMessageId.empty()) return addMessage(incidentRef, "in", receivedMessageId, inboundRef);
    const std::int64_t now = Database::nowSeconds();
    db_.cached("INSERT INTO case_messages (incident_ref, direction, message_id, inbound_ref, created_at) "
               "VALUES (?, 'in', ?, ?, ?), (?, 'out', ?, NULL, ?)")
        .bind(1, incidentRef).bind(2, receivedMessageId).bind(3, inboundRef).bind(4, now)
        .bind(5, incidentRef).bind(6, answerMessageId).bind(7, now)
        .send();
}

int Incidents::threadLength(std::int64_t incidentRef) {
    int n = 0;
    db_.session() << db_.sql("SELECT COUNT(*) FROM case_messages WHERE incident_ref = ?"), use(incidentRef), into(n), now;
    return n;
}

std::int64_t Incidents::count() {
    std::int64_t n = 0;
    db_.session() << "SELECT COUNT(*) FROM incidents", into(n), now;
    return n;
}

void Incidents::link(const std::string& email, std::int64_t contractRef, const std::string& partnerId) {
    db_.cached("INSERT INTO sender_links (email, contract_ref, linked_at) "
               "SELECT CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT) WHERE NOT EXISTS "
               "(SELECT 1 FROM contacts WHERE partner_id = ? AND email = ? AND active = 0) "
               "ON CONFLICT (email, contract_ref) DO NOTHING")
        .bind(1, email)
        .bind(2, contractRef)
        .bind(3, Database::nowSeconds())
        .bind(4, partnerId)
        .bind(5, email)
        .send();
}

std::vector<std::int64_t> Incidents::linkedContracts(const std::string& email) {
    auto q = db_.cached("SELECT contract_ref FROM sender_links WHERE email = ? ORDER BY contract_ref");
    q.bind(1, email);
    std::vector<std::int64_t> out;
    while (q.step()) out.push_back(q.int64(0));
    return out;
}

}  // namespace sm::store

namespace sm::store {

bool Incidents::close(std::int64_t id, const std::string& closureKind, const std::string& note,
                      std::int64_t closedAt) {
    std::string kind = closureKind, text = note, open = "open";
    Statement st(db_.session());
    st << db_.sql("UPDATE incidents SET state = 'closed', closure_kind = ?, closure_note = ?, closed_at = ? "
                  "WHERE id = ? AND state = ?"),
        use(kind), use(text), use(closedAt), use(id), use(open);
    return st.execute() > 0;
}

std::string Incidents::closureNote(std::int64_t id) {
    std::string note;
    db_.session() << db_.sql("SELECT closure_note FROM incidents WHERE id = ?"), use(id), into(note), now;
    return note;
}

std::int64_t Incidents::closedAt(std::int64_t id) {
    std::int64_t at = 0;
    db_.session() << db_.sql("SELECT COALESCE(closed_at, 0) FROM incidents WHERE id = ?"), use(id), into(at), now;
    return at;
}

std::vector<IncidentRow> Incidents::list(std::int64_t contractRef, const std::string& state) {
    std::string s = state;
    std::int64_t c = contractRef;
    std::vector<std::int64_t> ids;
    db_.session() << db_.sql("SELECT id FROM incidents WHERE (? = 0 OR contract_ref = ?) AND (? = '' OR state = ?) "
                             "ORDER BY id"),
        use(c), use(c), use(s), use(s), into(ids), now;
    std::vector<IncidentRow> out;
    for (auto id : ids)
        if (auto row = byId(id)) out.push_back(std::move(*row));
    return out;
}

std::vector<std::string> Incidents::threadMessageIds(std::int64_t incidentRef, const std::string& direction) {
    std::string d = direction;
    std::vector<std::string> out;
    db_.session() << db_.sql("SELECT message_id FROM case_messages WHERE incident_ref = ? AND (? = '' OR direction = ?) "
                             "AND message_id <> '' ORDER BY id"),
        use(incidentRef), use(d), use(d), into(out), now;
    return out;
}

std::vector<Incidents::ThreadEntry> Incidents::thread(std::int64_t incidentRef) {
    std::vector<std::string> direction, messageId;
    std::vector<std::int64_t> inboundRef, createdAt;
    db_.session() << db_.sql("SELECT direction, message_id, COALESCE(inbound_ref, 0), created_at FROM case_messages "
                             "WHERE incident_ref = ? ORDER BY id"),
        use(incidentRef), into(direction), into(messageId), into(inboundRef), into(createdAt), now;
    std::vector<ThreadEntry> out;
    for (std::size_t i = 0; i < direction.size(); ++i)
        out.push_back({direction[i], messageId[i], inboundRef[i], createdAt[i]});
    return out;
}

}  // namespace sm::store
