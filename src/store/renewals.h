// Membership renewals from the CRM, and their activation state.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/model.h"
#include "store/database.h"

namespace sm::store {

class Renewals {
public:
    explicit Renewals(Database& db) : db_(db) {}

    /// Inserts unless the same (partner, benefit, location, date) is already known.
    /// Returns true when a row was added.
    bool addIfAbsent(const domain::Renewal& r);

    /// Pending renewals in id order, after `afterId`, at most `limit`.
    /// partnerId empty = all partners.
    /// claim: on PostgreSQL the rows are locked for the caller's open transaction and
    /// rows another worker has locked are skipped (Database::claimClause).
    std::vector<domain::Renewal> pending(std::int64_t afterId, int limit, const std::string& partnerId = {},
                                         bool claim = false);

    /// How many are pending (for one partner if partnerId is given).
    std::int64_t countPending(const std::string& partnerId = {});
    /// Marks these pending renewals activated: one statement for a whole group.
    void markActivated(const std::vector<std::int64_t>& renewalIds);
    std::int64_t count();

private:
    Database& db_;
};

}  // namespace sm::store
