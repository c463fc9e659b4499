// The entities of DOMAIN.md as plain structs: what the store loads and the rules
// read. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sm::domain {

enum class Membership { None, Gold, Silver, ActionPack };
enum class Region { NorthAmerica, LatinAmerica, Emea, Apac, Unknown };
enum class ContactRole { HqPrimary, LocationPrimary, Member };
enum class AddressState { Ok, Bouncing };
enum class Scope { OnPrem, Cloud, Any };
enum class ContractState { Active, Expired, Suspended };

/// What a renewal line asks for: the benefit a plan is chosen by.
enum class Benefit { Gold, Silver, ActionPack, Scs, Asfp, CompetencyKit };

enum class RenewalState { Pending, Activated };

struct Partner {
    std::string partnerId;  ///< digits, e.g. "4648141"
    std::string name;
    Membership membership = Membership::None;
    std::string hqCountry;  ///< ISO 3166-1 alpha-2, upper case
};

struct Location {
    std::string locationId;
    std::string partnerId;
    std::string name;
    std::string country;
};

struct Contact {
    std::int64_t id = 0;
    std::string partnerId;
    std::string locationId;  ///< empty: headquarters
    std::string email;       ///< lower case
    std::string name;
    std::string country;
    ContactRole role = ContactRole::Member;
    std::string language = "en";
    AddressState addressState = AddressState::Ok;
};

struct Renewal {
    std::int64_t id = 0;
    std::string partnerId;
    Benefit benefit = Benefit::Gold;
    std::string locationId;   ///< competency kits only
    std::string renewalDate;  ///< YYYY-MM-DD
    RenewalState state = RenewalState::Pending;
};

struct Contract {
    std::int64_t id = 0;
    std::string accessId;    ///< 10 digits, a string: leading zeros matter
    std::string contractId;
    std::string partnerId;
    std::string locationId;
    std::string planKey;
    std::string displayName;
    Scope scope = Scope::Any;
    std::string activatedOn;  ///< YYYY-MM-DD
    std::string expiresOn;    ///< YYYY-MM-DD, the first day it is no longer valid
    ContractState state = ContractState::Active;
    int incidentsGranted = 0;
    int hoursGranted = 0;
    std::int64_t renewalId = 0;
};

// Names as they are written in files, the database and configuration.
std::string toString(Membership);
std::string toString(Region);
std::string toString(ContactRole);
std::string toString(AddressState);
std::string toString(Scope);
std::string toString(ContractState);
std::string toString(Benefit);
std::string toString(RenewalState);

// Parsers: std::nullopt for a word that is not one of the names above.
std::optional<Membership> parseMembership(const std::string&);
std::optional<Region> parseRegion(const std::string&);
std::optional<ContactRole> parseContactRole(const std::string&);
std::optional<AddressState> parseAddressState(const std::string&);
std::optional<Scope> parseScope(const std::string&);
std::optional<ContractState> parseContractState(const std::string&);
std::optional<Benefit> parseBenefit(const std::string&);
std::optional<RenewalState> parseRenewalState(const std::string&);

/// Gold and silver (and the SCS/ASfP cloud benefits and location kits that ride on
/// a renewal) are activated by the batch job; Action Pack only on request.
bool activatesAutomatically(Benefit);

}  // namespace sm::domain
