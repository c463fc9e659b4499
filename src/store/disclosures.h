// Every disclosure of an Access ID / Contract ID pair (issue 11): to whom, when, under
// which rule and in which outbox mail. Written in the transaction that queues the ID
// mail; read by `supportmail contract disclosures ID`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/database.h"
#include "store/outbox.h"

namespace sm::store {

/// The rules an ID pair is disclosed under.
namespace disclosure_rule {
inline const char* const kActivationHqPrimary = "activation_hq_primary";
inline const char* const kLocationKit = "location_kit";          ///< a kit's IDs to the location primary
inline const char* const kRegionalRule = "regional_rule";        ///< same-country contact (DOMAIN.md flow 3)
inline const char* const kResend = "resend";                     ///< to the primary on record (flow 4)
inline const char* const kResendRegionalRule = "resend_regional_rule";
}  // namespace disclosure_rule

struct DisclosureRow {
    std::int64_t id = 0;
    std::int64_t contractRef = 0;
    std::string recipient;
    std::string rule;
    std::int64_t outboxRef = 0;
    std::string messageId;
    std::int64_t createdAt = 0;
};

class Disclosures {
public:
    explicit Disclosures(Database& db) : db_(db) {}

    /// One row per recipient of a queued ID mail: its first recipient (To) under
    /// primaryRule, every other one (Cc) under othersRule.
    void recordIdMail(const OutboxRow& row, std::int64_t outboxId, const std::string& primaryRule,
                      const std::string& othersRule);
    std::vector<DisclosureRow> ofContract(std::int64_t contractRef);

private:
    Database& db_;
};

}  // namespace sm::store
