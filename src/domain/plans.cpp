#include "domain/plans.h"

#include <stdexcept>

namespace sm::domain {

PlanCatalogue::PlanCatalogue(std::vector<Plan> plans) : plans_(std::move(plans)) {
    for (std::size_t i = 0; i < plans_.size(); ++i)
        for (std::size_t j = i + 1; j < plans_.size(); ++j)
            if (plans_[i].benefit == plans_[j].benefit)
                throw std::invalid_argument("plans '" + plans_[i].key + "' and '" + plans_[j].key +
                                            "' both serve benefit '" + toString(plans_[i].benefit) + "'");
}

const Plan* PlanCatalogue::forBenefit(Benefit b) const {
    for (const auto& p : plans_)
        if (p.benefit == b) return &p;
    return nullptr;
}

const Plan* PlanCatalogue::byKey(const std::string& key) const {
    for (const auto& p : plans_)
        if (p.key == key) return &p;
    return nullptr;
}

}  // namespace sm::domain
