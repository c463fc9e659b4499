// The plan catalogue: which benefit becomes which contract (name, incidents,
// hours, scope, validity). Plans are configuration; this is only their shape and
// the lookup rule.
#pragma once

#include <string>
#include <vector>

#include "domain/model.h"

namespace sm::domain {

struct Plan {
    std::string key;          ///< configuration key, e.g. "gold"
    std::string name;         ///< "Partner Gold Support 20Pack"
    Benefit benefit = Benefit::Gold;
    std::string typeCode;     ///< display-name type, e.g. "SCS", "Gold"
    int incidents = 0;
    int hours = 0;            ///< advisory hours
    Scope scope = Scope::Any;
    int validityDays = 365;
};

class PlanCatalogue {
public:
    PlanCatalogue() = default;
    /// Throws std::invalid_argument if two plans serve the same benefit.
    explicit PlanCatalogue(std::vector<Plan> plans);

    /// The plan for a benefit, or nullptr when the catalogue has none.
    const Plan* forBenefit(Benefit) const;
    const Plan* byKey(const std::string& key) const;
    const std::vector<Plan>& all() const { return plans_; }

private:
    std::vector<Plan> plans_;
};

}  // namespace sm::domain
