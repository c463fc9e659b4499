// Contracts (support benefits) and their ledger. The balance of a contract is the
// sum of its ledger rows; each row carries a unique entry key so that the same
// movement (an activation grant, one incident's debit) is written at most once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "domain/model.h"
#include "store/database.h"

namespace sm::store {

/// Thrown by Contracts::lockedBalance(id, LockWait::OnlyWhenHoldingNone) when
/// another transaction holds that balance and this one already holds another
/// (waiting could deadlock), or by LockWait::Never whenever another holds it: the
/// caller rolls back that step and tries it again later.
class BalanceBusy : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class LockWait {
    Always,              ///< wait for the lock (a job that holds no other lock a waiter could want)
    OnlyWhenHoldingNone, ///< wait only as this transaction's first balance lock, else BalanceBusy
    Never                ///< BalanceBusy whenever another transaction holds it
};

class Contracts {
public:
    explicit Contracts(Database& db) : db_(db) {}

    bool accessIdExists(const std::string& accessId);
    bool contractIdExists(const std::string& contractId);

    /// Inserts the contract and returns its row id, or nullopt when a unique key is
    /// taken (its Access ID, its Contract ID, or its renewal already has a contract):
    /// the indexes decide, rows of the open transaction included. planName is kept
    /// for display.
    std::optional<std::int64_t> tryInsert(const domain::Contract& c, const std::string& planName,
                                          domain::Benefit benefit);

    /// Appends a ledger row unless entryKey was already used; true when written.
    bool appendLedger(std::int64_t contractRef, int delta, const std::string& reason, const std::string& entryKey);
    /// The same row, sent without waiting (CachedQuery::send): for a caller that does
    /// not ask whether it was written (process's debit, keyed by the inbound row).
    void appendLedgerPipelined(std::int64_t contractRef, int delta, const std::string& reason,
                               const std::string& entryKey);

    int balance(std::int64_t contractRef);
    /// The balance, read after locking it until the transaction ends, so that a
    /// debit decided on it cannot race another worker's (two workers seeing 1 and
    /// both debiting). PostgreSQL: a transaction-scoped advisory lock keyed by the
    /// contract's id (the only advisory lock the project takes); SQLite: the one
    /// writer needs none. Must be called inside a Transaction.
    int lockedBalance(std::int64_t contractRef, LockWait wait = LockWait::Always);
    struct WithLockedBalance {
        domain::Contract contract;
        int balance;
    };
    /// byPair, then lockedBalance(its id, wait) when there is a contract. On PostgreSQL
    /// the lock and the balance are keyed by the pair and sent ahead of the contract's
    /// read: one round trip for the three (and for what the caller sent ahead with
    /// CachedQuery::sendKeepingAnswer), the lock still granted before the balance is read.
    std::optional<WithLockedBalance> byPairWithLockedBalance(const std::string& accessId, const std::string& contractId,
                                                             LockWait wait);
    /// PostgreSQL: byPairWithLockedBalance in two halves, for a caller that sends them
    /// ahead of the message they are for (jobs/process's read-ahead): sendPair() sends
    /// the three reads (the lock never waits: LockWait::Never) through the statements'
    /// copy `instance` (Database::cached), readPair() reads their answers once a round
    /// trip or Database::collectSynced() brought them.
    struct PairReads {
        CachedQuery lock, balance, contract;
    };
    std::unique_ptr<PairReads> sendPair(const std::string& accessId, const std::string& contractId, int instance);
    std::optional<WithLockedBalance> readPair(PairReads& reads);
    std::optional<domain::Contract> byRenewal(std::int64_t renewalId);
    std::optional<domain::Contract> byId(std::int64_t id);
    /// Exact string match of both IDs (an Access ID is never compared as a number).
    std::optional<domain::Contract> byPair(const std::string& accessId, const std::string& contractId);
    std::vector<domain::Contract> ofPartner(const std::string& partnerId);
    std::int64_t count();

    /// Every contract, or those of one partner (""), ordered by id.
    std::vector<domain::Contract> list(const std::string& partnerId = "");
    /// Balance and case counts of every contract, in two grouped queries (contract
    /// list asked three questions per contract: 16 s for 20,000).
    struct Tally {
        int balance = 0, open = 0, closed = 0;
    };
    std::map<std::int64_t, Tally> tallies();
    /// Contracts whose display name is this one (trimmed, case-insensitive), or whose
    /// masked Access ID ("0037xxxxxx", as every listing prints it) matches.
    std::vector<domain::Contract> byDisplayNameOrMaskedAccessId(const std::string& given);
    /// Exact match of the Contract ID.
    std::optional<domain::Contract> byContractId(const std::string& contractId);
    /// The plan's name as it was at activation ("" for an unknown contract).
    std::string planName(std::int64_t id);

private:
    /// Whether a balance lock is waited for (LockWait's rules) or only tried.
    bool mayWaitForLock(LockWait wait) const;
    static BalanceBusy busy(std::int64_t contractRef);
    /// The three reads of a pair, sent keeping their answers.
    static void send(PairReads& reads, const std::string& accessId, const std::string& contractId);
    Database& db_;
};

}  // namespace sm::store
