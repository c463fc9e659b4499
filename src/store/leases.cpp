#include "store/leases.h"

#include <csignal>
#include <cerrno>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Environment.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {

bool Leases::acquire(const std::string& job, const std::string& holder, int ttlSeconds) {
    std::string j = job, h = holder;
    std::int64_t nowAt = Database::nowSeconds();
    std::int64_t expires = nowAt + ttlSeconds;
    // Free: insert. Each statement commits on its own and is atomic.
    db_.session() << db_.sql("INSERT INTO leases (job, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (job) DO NOTHING"),
        use(j), use(h), use(nowAt), use(expires), now;
    // Taken: only an expired lease, or our own, changes hands. Under concurrency the
    // engine serialises the updates and re-checks the WHERE: one winner.
    db_.session() << db_.sql("UPDATE leases SET holder = ?, acquired_at = ?, expires_at = ? "
                             "WHERE job = ? AND (expires_at < ? OR holder = ?)"),
        use(h), use(nowAt), use(expires), use(j), use(nowAt), use(h), now;
    auto r = row(job);
    if (r && r->holder != holder && holderIsDeadHere(r->holder)) {
        // A crashed run on this machine: its process is gone, so its lease is stale now,
        // not in a minute. Only that exact holder is replaced (one winner).
        std::string dead = r->holder;
        db_.session() << db_.sql("UPDATE leases SET holder = ?, acquired_at = ?, expires_at = ? "
                                 "WHERE job = ? AND holder = ?"),
            use(h), use(nowAt), use(expires), use(j), use(dead), now;
        r = row(job);
    }
    return r && r->holder == holder && r->expiresAt == expires;
}

std::string thisHostName() {
    std::string host;
    if (const char* named = std::getenv("SUPPORTMAIL_HOST")) host = named;
    if (host.empty()) {
        try {
            host = Poco::Environment::nodeName();
        } catch (...) {
        }
    }
    if (host.empty()) host = "localhost";
    for (auto& c : host)  // the holder's fields are split at ':'
        if (c == ':') c = '_';
    return host;
}

bool holderIsDeadHere(const std::string& holder) {
    // holder = "host:pid:random" (makeLeaseHolder)
    auto first = holder.find(':');
    auto second = holder.find(':', first == std::string::npos ? first : first + 1);
    if (first == std::string::npos || second == std::string::npos) return false;
    std::string host = holder.substr(0, first);
    if (host != thisHostName()) return false;
    long pid = 0;
    try {
        pid = std::stol(holder.substr(first + 1, second - first - 1));
    } catch (...) {
        return false;
    }
    if (pid <= 0 || pid == static_cast<long>(::getpid())) return false;
    return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

bool Leases::renew(const std::string& job, const std::string& holder, int ttlSeconds) {
    std::string j = job, h = holder;
    std::int64_t expires = Database::nowSeconds() + ttlSeconds;
    db_.session() << db_.sql("UPDATE leases SET expires_at = ? WHERE job = ? AND holder = ?"), use(expires), use(j),
        use(h), now;
    auto r = row(job);
    return r && r->holder == holder && r->expiresAt == expires;
}

void Leases::release(const std::string& job, const std::string& holder) {
    std::string j = job, h = holder;
    db_.session() << db_.sql("DELETE FROM leases WHERE job = ? AND holder = ?"), use(j), use(h), now;
}

std::optional<LeaseRow> Leases::held(const std::string& job) {
    auto r = row(job);
    if (r && r->expired(Database::nowSeconds())) return std::nullopt;
    return r;
}

std::optional<LeaseRow> Leases::row(const std::string& job) {
    std::string j = job;
    Statement st(db_.session());
    st << db_.sql("SELECT job, holder, acquired_at, expires_at FROM leases WHERE job = ?"), use(j);
    st.execute();
    RecordSet rs(st);
    if (!rs.moveFirst()) return std::nullopt;
    LeaseRow r;
    r.job = rs[0].convert<std::string>();
    r.holder = rs[1].convert<std::string>();
    r.acquiredAt = rs[2].convert<std::int64_t>();
    r.expiresAt = rs[3].convert<std::int64_t>();
    return r;
}

std::vector<LeaseRow> Leases::all() {
    Statement st(db_.session());
    st << "SELECT job, holder, acquired_at, expires_at FROM leases ORDER BY job";
    st.execute();
    RecordSet rs(st);
    std::vector<LeaseRow> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        LeaseRow r;
        r.job = rs[0].convert<std::string>();
        r.holder = rs[1].convert<std::string>();
        r.acquiredAt = rs[2].convert<std::int64_t>();
        r.expiresAt = rs[3].convert<std::int64_t>();
        out.push_back(std::move(r));
    }
    return out;
}

std::string makeLeaseHolder() {
    std::random_device rd;
    char rnd[17];
    std::snprintf(rnd, sizeof rnd, "%08x%08x", static_cast<unsigned>(rd()), static_cast<unsigned>(rd()));
    return thisHostName() + ":" + std::to_string(static_cast<long>(::getpid())) + ":" + rnd;
}

}  // namespace sm::store
