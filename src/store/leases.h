// Job leases: at most one run of a job at a time, across processes and machines
// sharing the database. A run takes the lease for its job with an expiry, renews
// it while it runs and releases it at the end. A holder that crashes stops
// renewing: its lease expires and the next run takes it over (no stuck locks).
//
// Each step is one atomic statement (no read-then-write race), on SQLite as on
// PostgreSQL: INSERT ... ON CONFLICT DO NOTHING claims a free job; an UPDATE whose
// WHERE admits only an expired lease or the holder's own claims a taken one; a
// re-read tells who holds it afterwards.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/database.h"

namespace sm::store {

struct LeaseRow {
    std::string job;
    std::string holder;
    std::int64_t acquiredAt = 0;
    std::int64_t expiresAt = 0;  ///< unix seconds; past = free for the next run
    bool expired(std::int64_t now) const { return expiresAt < now; }
};

class Leases {
public:
    explicit Leases(Database& db) : db_(db) {}

    /// Takes the lease for job if it is free, expired or already this holder's;
    /// it then expires ttlSeconds from now. False if another holder has it.
    bool acquire(const std::string& job, const std::string& holder, int ttlSeconds);
    /// Extends this holder's lease to ttlSeconds from now. False if the lease is no
    /// longer this holder's (it expired and another run took it over).
    bool renew(const std::string& job, const std::string& holder, int ttlSeconds);
    /// Gives the lease up; does nothing if another holder has it by now.
    void release(const std::string& job, const std::string& holder);
    /// The unexpired lease on job, if any.
    std::optional<LeaseRow> held(const std::string& job);
    /// Every lease row, expired ones included, by job.
    std::vector<LeaseRow> all();

private:
    std::optional<LeaseRow> row(const std::string& job);
    Database& db_;
};

/// The name of this host in holders: SUPPORTMAIL_HOST from the environment if set
/// (hosts that share a host name but not their processes, e.g. containers with
/// their own pid namespaces on one machine, must each set their own), else the
/// host name. A ':' in it becomes '_'.
std::string thisHostName();

/// A holder id unique to this process: "<host>:<pid>:<random hex>" (thisHostName()).
std::string makeLeaseHolder();

/// True when holder names a process of this host (thisHostName()) that no longer
/// exists (a run killed without releasing its lease): such a lease is taken over at once.
bool holderIsDeadHere(const std::string& holder);

}  // namespace sm::store
