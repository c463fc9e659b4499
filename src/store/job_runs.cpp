#include "store/job_runs.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {

std::int64_t JobRuns::start(const std::string& job, const std::string& holder) {
    std::string j = job, h = holder;
    std::int64_t at = Database::nowSeconds();
    db_.session() << db_.sql("INSERT INTO job_runs (job, started_at, holder) VALUES (?, ?, ?)"), use(j), use(at),
        use(h), now;
    // The id this connection just inserted (not MAX(id): another process may insert
    // a run of the same job in the same instant).
    std::int64_t id = 0;
    db_.session() << (db_.dialect() == Dialect::SQLite ? "SELECT last_insert_rowid()" : "SELECT lastval()"),
        into(id), now;
    return id;
}

void JobRuns::finish(std::int64_t runId, const std::string& outcome, const std::map<std::string, std::int64_t>& counts,
                     const std::string& error) {
    std::string json = "{";
    for (const auto& [k, v] : counts) {
        if (json.size() > 1) json += ",";
        json += "\"" + k + "\":" + std::to_string(v);
    }
    json += "}";
    std::string o = outcome, e = error;
    std::int64_t at = Database::nowSeconds();
    db_.session() << db_.sql("UPDATE job_runs SET finished_at = ?, outcome = ?, counts = ?, error = ? WHERE id = ?"),
        use(at), use(o), use(json), use(e), use(runId), now;
}

std::vector<JobRunRow> JobRuns::lastRuns() {
    Statement st(db_.session());
    st << "SELECT id, job, started_at, COALESCE(finished_at, 0), outcome, counts, error, holder FROM job_runs "
          "WHERE id IN (SELECT MAX(id) FROM job_runs GROUP BY job) ORDER BY job";
    st.execute();
    RecordSet rs(st);
    std::vector<JobRunRow> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        JobRunRow r;
        r.id = rs[0].convert<std::int64_t>();
        r.job = rs[1].convert<std::string>();
        r.startedAt = rs[2].convert<std::int64_t>();
        if (auto f = rs[3].convert<std::int64_t>(); f != 0) r.finishedAt = f;
        r.outcome = rs[4].convert<std::string>();
        r.counts = rs[5].convert<std::string>();
        r.error = rs[6].convert<std::string>();
        r.holder = rs[7].convert<std::string>();
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace sm::store
