// Job history: one row per run of a batch job, with its counts and outcome.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "store/database.h"

namespace sm::store {

class JobRuns {
public:
    explicit JobRuns(Database& db) : db_(db) {}
    std::int64_t start(const std::string& job);
    void finish(std::int64_t runId, const std::string& outcome, const std::map<std::string, std::int64_t>& counts,
                const std::string& error);

private:
    Database& db_;
};

}  // namespace sm::store
