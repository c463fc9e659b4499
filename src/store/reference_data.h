// Partners, locations and contacts: loaded from the CRM's file, read by
// activation and by the inbound rules.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/model.h"
#include "store/database.h"

namespace sm::store {

enum class Upsert { Inserted, Updated, Unchanged };

struct PartnerContacts {
    domain::Partner partner;
    std::vector<domain::Contact> contacts;  // active ones, in id order
};

class ReferenceData {
public:
    explicit ReferenceData(Database& db) : db_(db) {}

    Upsert upsertPartner(const domain::Partner& p, domain::Region region);
    Upsert upsertLocation(const domain::Location& l);
    /// Inserts, updates or brings back (active again) the contact (partner, email).
    Upsert upsertContact(const domain::Contact& c);
    /// Before c takes a primary role: any other active contact holding it (the partner's
    /// hq_primary, the location's location_primary, whichever partner that contact is
    /// filed under) becomes a member. The file is the truth for the role even when the
    /// old holder is kept (its partner has a skipped line, or the location moved to
    /// another partner). Returns how many were demoted.
    int demoteOtherPrimaries(const domain::Contact& c);
    /// Drops a primary role before another contact takes it (the schema holds one each).
    void demoteToMember(const std::string& partnerId, const std::string& email);
    /// The CRM no longer lists it: kept for history, no IDs, no resend, no link, no activation.
    void deactivateContact(const std::string& partnerId, const std::string& email, std::int64_t at);
    /// The address is an inactive contact of some partner and an active one of none.
    bool onlyInactiveContact(const std::string& email);

    std::optional<domain::Partner> partner(const std::string& partnerId);
    std::optional<domain::Location> location(const std::string& locationId);
    /// Active contacts only (the ones the CRM's last file listed), here and below.
    std::vector<domain::Contact> contactsOf(const std::string& partnerId);
    /// The partners among `partnerIds` that exist, each with its active contacts (as
    /// partner() and contactsOf() give them): two statements for a whole activation
    /// group instead of two per partner.
    std::unordered_map<std::string, PartnerContacts> partnersWithContacts(const std::vector<std::string>& partnerIds);
    /// Every active contact row with this address (one per partner it belongs to).
    std::vector<domain::Contact> contactsByEmail(const std::string& email);
    /// contactsByEmail in two steps, for a caller that sends the read ahead of another
    /// (CachedQuery::sendKeepingAnswer) so that both take one round trip: the kept
    /// statement, to bind the address to (1) and send; then its rows.
    CachedQuery contactsByEmailQuery(int instance = 0);
    static std::vector<domain::Contact> readContacts(CachedQuery& q);
    /// Every contact, or those in one address state ("ok", "bouncing"; "" = any), in id order.
    std::vector<domain::Contact> contacts(const std::string& addressState = "");
    void setAddressState(const std::string& email, domain::AddressState state);

private:
    Database& db_;
};

}  // namespace sm::store
