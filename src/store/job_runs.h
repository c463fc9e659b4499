// Job history: one row per run of a batch job, with its counts and outcome.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/database.h"

namespace sm::store {

struct JobRunRow {
    std::int64_t id = 0;
    std::string job;
    std::int64_t startedAt = 0;
    std::optional<std::int64_t> finishedAt;  ///< none while running (or after a crash)
    std::string outcome;                     ///< running | ok | failed | ...
    std::string counts;                      ///< JSON object, e.g. {"sent":3}
    std::string error;
    std::string holder;                      ///< the lease holder that ran it, "" if none
};

class JobRuns {
public:
    explicit JobRuns(Database& db) : db_(db) {}
    /// holder: the lease holder running the job ("" when it runs without a lease).
    std::int64_t start(const std::string& job, const std::string& holder = "");
    void finish(std::int64_t runId, const std::string& outcome, const std::map<std::string, std::int64_t>& counts,
                const std::string& error);
    /// The latest run of each job, by job name.
    std::vector<JobRunRow> lastRuns();

private:
    Database& db_;
};

}  // namespace sm::store
