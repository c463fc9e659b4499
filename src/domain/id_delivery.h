// Who may receive a contract's Access ID and Contract ID (DOMAIN.md flow 3):
// the headquarters primary contact; for a location's competency kit, that
// location's primary contact; and, where the regional rule is on and the benefit's
// country lies in North America, Latin America or EMEA, the partner's other
// contacts in that same country.
#pragma once

#include <string>
#include <vector>

#include "domain/model.h"
#include "domain/regions.h"

namespace sm::domain {

struct IdRecipients {
    const Contact* primary = nullptr;     ///< nullptr: nobody may receive the IDs
    std::vector<const Contact*> others;   ///< same-country contacts (regional rule)
    std::string problem;                  ///< why primary is missing, for the report
};

struct IdDeliveryPolicy {
    bool regionalRule = true;
    const RegionTable* regions = nullptr;
};

/// The country a benefit belongs to: the location's for a kit, else the HQ's.
std::string benefitCountry(const Partner& partner, const Location* location);

/// contacts: all contacts of the partner. location: the kit's location, or nullptr.
/// Bouncing addresses are never added as extra recipients; a bouncing primary is
/// still the primary (the administrators were told when it bounced).
IdRecipients idRecipients(const Partner& partner, const Location* location,
                          const std::vector<Contact>& contacts, const IdDeliveryPolicy& policy);

}  // namespace sm::domain
