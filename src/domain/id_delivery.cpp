#include "domain/id_delivery.h"

namespace sm::domain {

std::string benefitCountry(const Partner& partner, const Location* location) {
    return location ? location->country : partner.hqCountry;
}

IdRecipients idRecipients(const Partner& partner, const Location* location,
                          const std::vector<Contact>& contacts, const IdDeliveryPolicy& policy) {
    IdRecipients out;
    for (const auto& c : contacts) {
        if (c.partnerId != partner.partnerId) continue;
        bool isPrimary = location ? (c.role == ContactRole::LocationPrimary && c.locationId == location->locationId)
                                  : (c.role == ContactRole::HqPrimary);
        if (isPrimary && !out.primary) out.primary = &c;
    }
    if (!out.primary) {
        out.problem = location ? "location " + location->locationId + " has no location_primary contact"
                               : "partner " + partner.partnerId + " has no hq_primary contact";
        return out;
    }
    if (!policy.regionalRule || !policy.regions) return out;
    const std::string country = benefitCountry(partner, location);
    if (!regionAllowsSameCountryDelivery(policy.regions->regionOf(country))) return out;
    for (const auto& c : contacts) {
        if (&c == out.primary || c.partnerId != partner.partnerId) continue;
        if (c.country == country && c.addressState == AddressState::Ok && c.email != out.primary->email)
            out.others.push_back(&c);
    }
    return out;
}

}  // namespace sm::domain
