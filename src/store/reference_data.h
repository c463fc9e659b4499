// Partners, locations and contacts: loaded from the CRM's file, read by
// activation and by the inbound rules.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/model.h"
#include "store/database.h"

namespace sm::store {

enum class Upsert { Inserted, Updated, Unchanged };

class ReferenceData {
public:
    explicit ReferenceData(Database& db) : db_(db) {}

    Upsert upsertPartner(const domain::Partner& p, domain::Region region);
    Upsert upsertLocation(const domain::Location& l);
    Upsert upsertContact(const domain::Contact& c);

    std::optional<domain::Partner> partner(const std::string& partnerId);
    std::optional<domain::Location> location(const std::string& locationId);
    std::vector<domain::Contact> contactsOf(const std::string& partnerId);
    /// Every contact row with this address (one per partner it belongs to).
    std::vector<domain::Contact> contactsByEmail(const std::string& email);
    /// Every contact, or those in one address state ("ok", "bouncing"; "" = any), in id order.
    std::vector<domain::Contact> contacts(const std::string& addressState = "");
    void setAddressState(const std::string& email, domain::AddressState state);

private:
    Database& db_;
};

}  // namespace sm::store
