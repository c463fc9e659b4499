#include "domain/model.h"

#include <array>
#include <utility>

namespace sm::domain {
namespace {

template <typename E, std::size_t N>
std::string nameOf(const std::array<std::pair<E, const char*>, N>& table, E value) {
    for (const auto& [e, name] : table)
        if (e == value) return name;
    return "unknown";
}

template <typename E, std::size_t N>
std::optional<E> valueOf(const std::array<std::pair<E, const char*>, N>& table, const std::string& word) {
    for (const auto& [e, name] : table)
        if (word == name) return e;
    return std::nullopt;
}

constexpr std::array<std::pair<Membership, const char*>, 4> kMembership{{
    {Membership::None, "none"}, {Membership::Gold, "gold"},
    {Membership::Silver, "silver"}, {Membership::ActionPack, "action_pack"}}};
constexpr std::array<std::pair<Region, const char*>, 5> kRegion{{
    {Region::NorthAmerica, "north_america"}, {Region::LatinAmerica, "latin_america"},
    {Region::Emea, "emea"}, {Region::Apac, "apac"}, {Region::Unknown, "unknown"}}};
constexpr std::array<std::pair<ContactRole, const char*>, 3> kRole{{
    {ContactRole::HqPrimary, "hq_primary"}, {ContactRole::LocationPrimary, "location_primary"},
    {ContactRole::Member, "member"}}};
constexpr std::array<std::pair<AddressState, const char*>, 2> kAddressState{{
    {AddressState::Ok, "ok"}, {AddressState::Bouncing, "bouncing"}}};
constexpr std::array<std::pair<Scope, const char*>, 3> kScope{{
    {Scope::OnPrem, "on_prem"}, {Scope::Cloud, "cloud"}, {Scope::Any, "any"}}};
constexpr std::array<std::pair<ContractState, const char*>, 3> kContractState{{
    {ContractState::Active, "active"}, {ContractState::Expired, "expired"},
    {ContractState::Suspended, "suspended"}}};
constexpr std::array<std::pair<Benefit, const char*>, 6> kBenefit{{
    {Benefit::Gold, "gold"}, {Benefit::Silver, "silver"}, {Benefit::ActionPack, "action_pack"},
    {Benefit::Scs, "scs"}, {Benefit::Asfp, "asfp"}, {Benefit::CompetencyKit, "competency_kit"}}};
constexpr std::array<std::pair<RenewalState, const char*>, 2> kRenewalState{{
    {RenewalState::Pending, "pending"}, {RenewalState::Activated, "activated"}}};

}  // namespace

std::string toString(Membership v) { return nameOf(kMembership, v); }
std::string toString(Region v) { return nameOf(kRegion, v); }
std::string toString(ContactRole v) { return nameOf(kRole, v); }
std::string toString(AddressState v) { return nameOf(kAddressState, v); }
std::string toString(Scope v) { return nameOf(kScope, v); }
std::string toString(ContractState v) { return nameOf(kContractState, v); }
std::string toString(Benefit v) { return nameOf(kBenefit, v); }
std::string toString(RenewalState v) { return nameOf(kRenewalState, v); }

std::optional<Membership> parseMembership(const std::string& s) { return valueOf(kMembership, s); }
std::optional<Region> parseRegion(const std::string& s) { return valueOf(kRegion, s); }
std::optional<ContactRole> parseContactRole(const std::string& s) { return valueOf(kRole, s); }
std::optional<AddressState> parseAddressState(const std::string& s) { return valueOf(kAddressState, s); }
std::optional<Scope> parseScope(const std::string& s) { return valueOf(kScope, s); }
std::optional<ContractState> parseContractState(const std::string& s) { return valueOf(kContractState, s); }
std::optional<Benefit> parseBenefit(const std::string& s) { return valueOf(kBenefit, s); }
std::optional<RenewalState> parseRenewalState(const std::string& s) { return valueOf(kRenewalState, s); }

bool activatesAutomatically(Benefit b) { return b != Benefit::ActionPack; }

}  // namespace sm::domain
