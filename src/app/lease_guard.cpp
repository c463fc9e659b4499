#include "app/lease_guard.h"

#include <algorithm>

#include <Poco/Exception.h>

namespace sm::app {

LeaseGuard::LeaseGuard(const std::string& databaseUrl, const std::string& job, Poco::Logger& log, int ttlSeconds,
                       store::Database* jobDatabase)
    : job_(job), holder_(store::makeLeaseHolder()), log_(log), ttlSeconds_(std::max(ttlSeconds, 1)),
      jobDatabase_(jobDatabase) {
    db_ = store::Database::open(databaseUrl);
    try {
        store::Leases leases(*db_);
        acquired_ = leases.acquire(job_, holder_, ttlSeconds_);
        if (!acquired_) heldBy_ = leases.held(job_);
    } catch (const Poco::Exception& e) {
        throw store::StoreError("cannot take the lease for " + job_ + " on " + db_->describe() + ": " +
                                e.displayText());
    }
    if (!acquired_) return;
    log_.debug("lease for %s taken by %s for %d s", job_, holder_, ttlSeconds_);
    thread_ = std::thread([this] { renewLoop(); });
}

LeaseGuard::~LeaseGuard() {
    if (!acquired_) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    try {
        store::Leases(*db_).release(job_, holder_);
        log_.debug("lease for %s released by %s", job_, holder_);
    } catch (const Poco::Exception& e) {
        // It expires on its own within the ttl.
        log_.warning("lease for %s not released (it expires within %d s): %s", job_, ttlSeconds_, e.displayText());
    } catch (const std::exception& e) {
        log_.warning("lease for %s not released (it expires within %d s): %s", job_, ttlSeconds_,
                     std::string(e.what()));
    }
}

void LeaseGuard::renewLoop() {
    const auto interval = std::chrono::milliseconds(std::max(ttlSeconds_ * 1000 / 3, 500));
    std::unique_lock<std::mutex> lock(mutex_);
    while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
        lock.unlock();
        try {
            store::Leases leases(*db_);
            if (!leases.renew(job_, holder_, ttlSeconds_)) {
                auto other = leases.held(job_);
                lost_ = true;
                const std::string how = other ? "it expired and " + other->holder + " took it over"
                                              : std::string("it expired and was released by another run");
                log_.error("lease for %s lost: %s; stopping this run", job_, how);
                if (jobDatabase_) jobDatabase_->interrupt("the lease for " + job_ + " was lost: " + how);
                return;
            }
        } catch (const Poco::Exception& e) {
            log_.warning("lease for %s not renewed (trying again at the next tick): %s", job_, e.displayText());
        } catch (const std::exception& e) {
            log_.warning("lease for %s not renewed (trying again at the next tick): %s", job_, std::string(e.what()));
        }
        lock.lock();
    }
}

}  // namespace sm::app
