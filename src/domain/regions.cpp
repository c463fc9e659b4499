#include "domain/regions.h"

namespace sm::domain {

void RegionTable::assign(const std::string& country, Region region) { byCountry_[country] = region; }

Region RegionTable::regionOf(const std::string& country) const {
    auto it = byCountry_.find(country);
    return it == byCountry_.end() ? Region::Unknown : it->second;
}

bool regionAllowsSameCountryDelivery(Region r) {
    return r == Region::NorthAmerica || r == Region::LatinAmerica || r == Region::Emea;
}

}  // namespace sm::domain
