// Region from country, and the regional delivery rule of DOMAIN.md flow 3: in
// North America, Latin America and EMEA the IDs may also go to any contact of the
// partner in the same country as the benefit.
#pragma once

#include <map>
#include <string>

#include "domain/model.h"

namespace sm::domain {

class RegionTable {
public:
    /// country code (upper case) → region
    void assign(const std::string& country, Region region);
    Region regionOf(const std::string& country) const;
    bool empty() const { return byCountry_.empty(); }

private:
    std::map<std::string, Region> byCountry_;
};

/// True where the same-country rule may widen the recipients.
bool regionAllowsSameCountryDelivery(Region);

}  // namespace sm::domain
