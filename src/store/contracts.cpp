#include "store/contracts.h"

#include <algorithm>
#include <cctype>

#include <Poco/String.h>

#include <Poco/Data/RecordSet.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {
namespace {

const char* kColumns =
    "id, access_id, contract_id, partner_id, location_id, plan_key, display_name, scope, activated_on, "
    "expires_on, state, incidents_granted, hours_granted, renewal_id";

domain::Contract contractFrom(RecordSet& rs) {
    domain::Contract c;
    c.id = rs[0].convert<std::int64_t>();
    c.accessId = rs[1].convert<std::string>();
    c.contractId = rs[2].convert<std::string>();
    c.partnerId = rs[3].convert<std::string>();
    c.locationId = rs[4].convert<std::string>();
    c.planKey = rs[5].convert<std::string>();
    c.displayName = rs[6].convert<std::string>();
    c.scope = domain::parseScope(rs[7].convert<std::string>()).value_or(domain::Scope::Any);
    c.activatedOn = rs[8].convert<std::string>();
    c.expiresOn = rs[9].convert<std::string>();
    c.state = domain::parseContractState(rs[10].convert<std::string>()).value_or(domain::ContractState::Active);
    c.incidentsGranted = rs[11].convert<int>();
    c.hoursGranted = rs[12].convert<int>();
    c.renewalId = rs[13].convert<std::int64_t>();
    return c;
}

// The columns of kColumns, from a kept statement.
domain::Contract contractFrom(const CachedQuery& q) {
    domain::Contract c;
    c.id = q.int64(0);
    c.accessId = q.text(1);
    c.contractId = q.text(2);
    c.partnerId = q.text(3);
    c.locationId = q.text(4);
    c.planKey = q.text(5);
    c.displayName = q.text(6);
    c.scope = domain::parseScope(q.text(7)).value_or(domain::Scope::Any);
    c.activatedOn = q.text(8);
    c.expiresOn = q.text(9);
    c.state = domain::parseContractState(q.text(10)).value_or(domain::ContractState::Active);
    c.incidentsGranted = static_cast<int>(q.int64(11));
    c.hoursGranted = static_cast<int>(q.int64(12));
    c.renewalId = q.int64(13);
    return c;
}

// A request's pair: the contract, its balance lock (waited for, or only tried) and its
// balance, each keyed by the pair so that the three go in one round trip.
const char* const kContractByPair =
    "SELECT id, access_id, contract_id, partner_id, location_id, plan_key, display_name, scope, "
    "activated_on, expires_on, state, incidents_granted, hours_granted, renewal_id "
    "FROM contracts WHERE access_id = ? AND contract_id = ?";
const char* const kLockWaiting =
    "SELECT 1 FROM contracts, LATERAL (SELECT pg_advisory_xact_lock(id)) AS locked WHERE access_id = ? AND "
    "contract_id = ?";
const char* const kLockTrying =
    "SELECT CASE WHEN pg_try_advisory_xact_lock(id) THEN 1 ELSE 0 END FROM contracts WHERE access_id = ? AND "
    "contract_id = ?";
const char* const kPairBalance =
    "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = "
    "(SELECT id FROM contracts WHERE access_id = ? AND contract_id = ?)";

std::vector<domain::Contract> select(Database& db, const std::string& where, std::string value) {
    Statement st(db.session());
    st << db.sql(std::string("SELECT ") + kColumns + " FROM contracts WHERE " + where + " ORDER BY id"), use(value);
    st.execute();
    RecordSet rs(st);
    std::vector<domain::Contract> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) out.push_back(contractFrom(rs));
    return out;
}

}  // namespace

bool Contracts::accessIdExists(const std::string& accessId) {
    if (db_.dialect() == Dialect::SQLite) {
        auto q = db_.cached("SELECT 1 FROM contracts WHERE access_id = ?");
        return q.bind(1, accessId).step();
    }
    std::string v = accessId;
    int n = 0;
    db_.session() << db_.sql("SELECT COUNT(*) FROM contracts WHERE access_id = ?"), use(v), into(n), now;
    return n > 0;
}

bool Contracts::contractIdExists(const std::string& contractId) {
    if (db_.dialect() == Dialect::SQLite) {
        auto q = db_.cached("SELECT 1 FROM contracts WHERE contract_id = ?");
        return q.bind(1, contractId).step();
    }
    std::string v = contractId;
    int n = 0;
    db_.session() << db_.sql("SELECT COUNT(*) FROM contracts WHERE contract_id = ?"), use(v), into(n), now;
    return n > 0;
}

std::optional<std::int64_t> Contracts::tryInsert(const domain::Contract& c, const std::string& planName,
                                                 domain::Benefit benefit) {
    // The same statement, kept prepared on both engines; the new id comes with it.
    // No lookup before it: the unique indexes answer whether the IDs are free.
    const std::string ben = domain::toString(benefit), scope = domain::toString(c.scope),
                      state = domain::toString(c.state);
    auto q = db_.cachedInsert("INSERT INTO contracts (access_id, contract_id, partner_id, location_id, renewal_id, "
                              "plan_key, plan_name, display_name, benefit, scope, activated_on, expires_on, state, "
                              "incidents_granted, hours_granted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                              "ON CONFLICT DO NOTHING");
    q.bind(1, c.accessId).bind(2, c.contractId).bind(3, c.partnerId).bind(4, c.locationId);
    q.bind(5, c.renewalId).bind(6, c.planKey).bind(7, planName).bind(8, c.displayName).bind(9, ben);
    q.bind(10, scope).bind(11, c.activatedOn).bind(12, c.expiresOn).bind(13, state);
    q.bind(14, std::int64_t{c.incidentsGranted}).bind(15, std::int64_t{c.hoursGranted});
    q.step();
    if (q.changes() == 0) return std::nullopt;
    return q.insertedId();
}

bool Contracts::appendLedger(std::int64_t contractRef, int delta, const std::string& reason,
                             const std::string& entryKey) {
    // One statement: the unique entry key decides (a debit per inbound mail, a
    // grant per renewal), on both engines.
    auto q = db_.cached("INSERT INTO ledger (contract_ref, delta, reason, entry_key, created_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (entry_key) DO NOTHING");
    q.bind(1, contractRef).bind(2, std::int64_t{delta}).bind(3, reason).bind(4, entryKey).bind(5, Database::nowSeconds());
    q.run();
    return q.changes() == 1;
}

void Contracts::appendLedgerPipelined(std::int64_t contractRef, int delta, const std::string& reason,
                                      const std::string& entryKey) {
    db_.cached("INSERT INTO ledger (contract_ref, delta, reason, entry_key, created_at) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (entry_key) DO NOTHING")
        .bind(1, contractRef)
        .bind(2, std::int64_t{delta})
        .bind(3, reason)
        .bind(4, entryKey)
        .bind(5, Database::nowSeconds())
        .send();
}

int Contracts::balance(std::int64_t contractRef) {
    auto q = db_.cached("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = ?");
    q.bind(1, contractRef).step();
    return static_cast<int>(q.int64(0));
}

bool Contracts::mayWaitForLock(LockWait wait) const {
    return wait == LockWait::Always || (wait == LockWait::OnlyWhenHoldingNone && db_.balanceLocksHeld() == 0);
}

BalanceBusy Contracts::busy(std::int64_t contractRef) {
    return BalanceBusy("the balance of contract #" + std::to_string(contractRef) + " is locked by another worker");
}

int Contracts::lockedBalance(std::int64_t contractRef, LockWait wait) {
    if (db_.dialect() != Dialect::PostgreSQL) return balance(contractRef);
    // The lock, then the balance, in one round trip: sent one after the other, the sum
    // is read in a snapshot the server takes after the lock was granted (one statement
    // doing both would read it in a snapshot taken before, and miss a debit the lock's
    // last holder committed meanwhile).
    if (mayWaitForLock(wait)) {
        db_.cached("SELECT 1 FROM (SELECT pg_advisory_xact_lock(CAST(? AS BIGINT))) AS locked").bind(1, contractRef).send();
        const int b = balance(contractRef);
        db_.noteBalanceLock();
        return b;
    }
    auto lock = db_.cached("SELECT CASE WHEN pg_try_advisory_xact_lock(CAST(? AS BIGINT)) THEN 1 ELSE 0 END");
    lock.bind(1, contractRef).sendKeepingAnswer();
    const int b = balance(contractRef);  // read for nothing when the lock was not granted
    if (!lock.step() || !lock.int64(0)) throw busy(contractRef);
    db_.noteBalanceLock();
    return b;
}

std::optional<Contracts::WithLockedBalance> Contracts::byPairWithLockedBalance(const std::string& accessId,
                                                                             const std::string& contractId,
                                                                             LockWait wait) {
    if (db_.dialect() != Dialect::PostgreSQL) {
        auto c = byPair(accessId, contractId);
        if (!c) return std::nullopt;
        return WithLockedBalance{*c, lockedBalance(c->id, wait)};
    }
    // As lockedBalance, the contract's id read from the pair by each statement (an
    // unknown pair locks nothing and sums nothing): the lock, then the balance in a
    // snapshot taken after it was granted, then the contract, sent in that order.
    PairReads reads{db_.cached(mayWaitForLock(wait) ? kLockWaiting : kLockTrying), db_.cached(kPairBalance),
                    db_.cached(kContractByPair)};
    send(reads, accessId, contractId);
    db_.flush();  // the answers of all three, and of what the caller sent ahead, in one round trip
    return readPair(reads);
}

std::unique_ptr<Contracts::PairReads> Contracts::sendPair(const std::string& accessId, const std::string& contractId,
                                                          int instance) {
    std::unique_ptr<PairReads> reads(new PairReads{db_.cached(kLockTrying, instance),
                                                   db_.cached(kPairBalance, instance),
                                                   db_.cached(kContractByPair, instance)});
    send(*reads, accessId, contractId);
    return reads;
}

void Contracts::send(PairReads& reads, const std::string& accessId, const std::string& contractId) {
    reads.lock.bind(1, accessId).bind(2, contractId).sendKeepingAnswer();
    reads.balance.bind(1, accessId).bind(2, contractId).sendKeepingAnswer();
    reads.contract.bind(1, accessId).bind(2, contractId).sendKeepingAnswer();
}

std::optional<Contracts::WithLockedBalance> Contracts::readPair(PairReads& reads) {
    if (!reads.contract.step()) return std::nullopt;
    domain::Contract c = contractFrom(reads.contract);
    if (!reads.lock.step() || !reads.lock.int64(0)) throw busy(c.id);
    db_.noteBalanceLock();
    reads.balance.step();
    return WithLockedBalance{std::move(c), static_cast<int>(reads.balance.int64(0))};
}

std::optional<domain::Contract> Contracts::byRenewal(std::int64_t renewalId) {
    auto v = select(db_, "renewal_id = CAST(? AS INTEGER)", std::to_string(renewalId));
    if (v.empty()) return std::nullopt;
    return v.front();
}

std::optional<domain::Contract> Contracts::byId(std::int64_t id) {
    auto q = db_.cached("SELECT id, access_id, contract_id, partner_id, location_id, plan_key, display_name, scope, "
                        "activated_on, expires_on, state, incidents_granted, hours_granted, renewal_id "
                        "FROM contracts WHERE id = ?");
    if (!q.bind(1, id).step()) return std::nullopt;
    return contractFrom(q);
}

std::optional<domain::Contract> Contracts::byPair(const std::string& accessId, const std::string& contractId) {
    auto q = db_.cached(kContractByPair);
    if (!q.bind(1, accessId).bind(2, contractId).step()) return std::nullopt;
    return contractFrom(q);
}

std::vector<domain::Contract> Contracts::ofPartner(const std::string& partnerId) {
    return select(db_, "partner_id = ?", partnerId);
}

std::int64_t Contracts::count() {
    std::int64_t n = 0;
    db_.session() << "SELECT COUNT(*) FROM contracts", into(n), now;
    return n;
}

}  // namespace sm::store

namespace sm::store {

std::vector<domain::Contract> Contracts::list(const std::string& partnerId) {
    if (partnerId.empty()) return select(db_, "? = ''", "");
    return select(db_, "partner_id = ?", partnerId);
}

std::optional<domain::Contract> Contracts::byContractId(const std::string& contractId) {
    auto v = select(db_, "contract_id = ?", contractId);
    if (v.empty()) return std::nullopt;
    return v.front();
}

std::map<std::int64_t, Contracts::Tally> Contracts::tallies() {
    std::map<std::int64_t, Tally> out;
    {
        Statement st(db_.session());
        st << "SELECT contract_ref, COALESCE(SUM(delta), 0) FROM ledger GROUP BY contract_ref";
        st.execute();
        RecordSet rs(st);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out[rs[0].convert<std::int64_t>()].balance = rs[1].convert<int>();
    }
    Statement st(db_.session());
    st << "SELECT contract_ref, state, COUNT(*) FROM incidents GROUP BY contract_ref, state";
    st.execute();
    RecordSet rs(st);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        auto& t = out[rs[0].convert<std::int64_t>()];
        (rs[1].convert<std::string>() == "open" ? t.open : t.closed) += rs[2].convert<int>();
    }
    return out;
}

std::vector<domain::Contract> Contracts::byDisplayNameOrMaskedAccessId(const std::string& given) {
    std::string name = Poco::toLower(Poco::trim(given));
    std::vector<domain::Contract> out;
    if (name.empty()) return out;
    // "0037xxxxxx": the first four digits, then the mask (domain::maskAccessId).
    const bool masked = name.size() == 10 && name.substr(4) == "xxxxxx" &&
                        std::all_of(name.begin(), name.begin() + 4, [](unsigned char c) { return std::isdigit(c); });
    std::string prefix = masked ? name.substr(0, 4) + "%" : std::string();
    Statement st(db_.session());
    st << db_.sql(std::string("SELECT ") + kColumns +
                  " FROM contracts WHERE LOWER(TRIM(display_name)) = ? OR (? <> '' AND access_id LIKE ?) ORDER BY id"),
        use(name), use(prefix), use(prefix);
    st.execute();
    RecordSet rs(st);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) out.push_back(contractFrom(rs));
    return out;
}

std::string Contracts::planName(std::int64_t id) {
    std::vector<std::string> names;
    db_.session() << db_.sql("SELECT plan_name FROM contracts WHERE id = ?"), use(id), into(names), now;
    return names.empty() ? std::string() : names.front();
}

}  // namespace sm::store
