// The lease a job run holds while it runs (store/leases.h), as an RAII object.
//
// The constructor opens a second connection to the database (the job's own
// connection is not thread-safe; SQLite in WAL mode allows both) and tries to take
// the lease. If it got it, a background thread renews it every ttl/3 until the
// guard dies, and the destructor releases it. A crashed process renews nothing:
// its lease expires after at most ttl and the next run takes over.
//
// If a renewal finds that another holder has taken the lease (this run could not
// renew for longer than the ttl, e.g. the database was locked for a minute), the
// guard logs an error, stops renewing and interrupts the job's database (if it was
// given one): the statement running is cancelled, the open transaction rolls back
// and the job stops with store::RunInterrupted, so two runs never overlap. A
// renewal that fails for another reason (database busy) is logged as a warning and
// tried again at the next tick.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <Poco/Logger.h>

#include "store/database.h"
#include "store/leases.h"

namespace sm::app {

class LeaseGuard {
public:
    static constexpr int kTtlSeconds = 60;

    /// Throws store::StoreError if the database cannot be opened or read.
    /// jobDatabase: the job's own connection, interrupted when the lease is lost
    /// (it must outlive the guard); nullptr = nothing to stop.
    LeaseGuard(const std::string& databaseUrl, const std::string& job, Poco::Logger& log,
               int ttlSeconds = kTtlSeconds, store::Database* jobDatabase = nullptr);
    ~LeaseGuard();
    LeaseGuard(const LeaseGuard&) = delete;
    LeaseGuard& operator=(const LeaseGuard&) = delete;

    bool acquired() const { return acquired_; }
    const std::string& job() const { return job_; }
    const std::string& holder() const { return holder_; }
    /// When not acquired: the lease in the way, if it could still be read.
    const std::optional<store::LeaseRow>& heldBy() const { return heldBy_; }
    /// True once a renewal found the lease in another holder's hands.
    bool lost() const { return lost_; }

private:
    void renewLoop();

    std::string job_;
    std::string holder_;
    Poco::Logger& log_;
    int ttlSeconds_;
    std::unique_ptr<store::Database> db_;
    store::Database* jobDatabase_;
    bool acquired_ = false;
    std::optional<store::LeaseRow> heldBy_;
    std::atomic<bool> lost_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace sm::app
