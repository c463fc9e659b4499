#include "store/job_runs.h"

using namespace Poco::Data::Keywords;

namespace sm::store {

std::int64_t JobRuns::start(const std::string& job) {
    std::string j = job;
    std::int64_t at = Database::nowSeconds();
    db_.session() << db_.sql("INSERT INTO job_runs (job, started_at) VALUES (?, ?)"), use(j), use(at), now;
    std::int64_t id = 0;
    db_.session() << db_.sql("SELECT MAX(id) FROM job_runs WHERE job = ?"), use(j), into(id), now;
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

}  // namespace sm::store
