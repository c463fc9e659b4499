// Domain rules without I/O: IDs, display names, plans, the regional delivery rule,
// dates.
#include <catch2/catch.hpp>

#include <set>

#include "domain/dates.h"
#include "domain/id_delivery.h"
#include "domain/ids.h"
#include "domain/plans.h"

using namespace sm::domain;

namespace {
// A deterministic source: returns the scripted values in order, then repeats the last.
class ScriptedRandom : public RandomSource {
public:
    explicit ScriptedRandom(std::vector<std::uint64_t> v) : values_(std::move(v)) {}
    std::uint64_t next64() override { return values_[std::min(pos_++, values_.size() - 1)]; }

private:
    std::vector<std::uint64_t> values_;
    std::size_t pos_ = 0;
};
}  // namespace

TEST_CASE("Access IDs are exactly ten digits and leading zeros are significant", "[domain][ids]") {
    CHECK(isValidAccessId("0230242323"));
    CHECK_FALSE(isValidAccessId("230242323"));
    CHECK_FALSE(isValidAccessId("02302423230"));
    CHECK_FALSE(isValidAccessId("02302423a3"));
    CHECK_FALSE(isValidAccessId(" 230242323"));
    CHECK_FALSE(isValidAccessId(""));
}

TEST_CASE("a generated Access ID keeps its leading zeros", "[domain][ids]") {
    ScriptedRandom r({37});
    CHECK(generateAccessId(r) == "0000000037");
}

TEST_CASE("generated Access IDs are well formed, spread out and not sequential", "[domain][ids]") {
    SystemRandom random;
    std::set<std::string> seen;
    std::vector<unsigned long long> values;
    int leadingZero = 0, repeats = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string id = generateAccessId(random);
        REQUIRE(isValidAccessId(id));
        repeats += !seen.insert(id).second;
        values.push_back(std::stoull(id));
        leadingZero += id[0] == '0';
    }
    // 20,000 draws from 10^10 repeat one by chance 2 % of the time (the birthday
    // bound; the store refuses a repeat, see IdGenerator); three or more would take
    // odds of about one in a million: a generator with little entropy.
    CHECK(repeats <= 2);
    int ascendingByOne = 0;
    for (std::size_t i = 1; i < values.size(); ++i) ascendingByOne += values[i] == values[i - 1] + 1;
    CHECK(ascendingByOne == 0);
    // About 10 % start with '0'; a generator that dropped zeros would give none.
    CHECK(leadingZero > 1500);
    CHECK(leadingZero < 2500);
}

TEST_CASE("uniformBelow rejects the biased top of the range", "[domain][ids]") {
    // UINT64_MAX lies in the partial top range for bound 10: it must be rejected.
    ScriptedRandom r({UINT64_MAX, 12});
    CHECK(uniformBelow(r, 10) == 2);
}

TEST_CASE("Contract IDs use the unambiguous alphabet", "[domain][ids]") {
    SystemRandom random;
    std::set<std::string> seen;
    for (int i = 0; i < 5000; ++i) {
        std::string id = generateContractId(random);
        REQUIRE(isValidContractId(id));
        REQUIRE(id.find_first_of("01OIL") == std::string::npos);
        REQUIRE(seen.insert(id).second);
    }
    CHECK(normalizeContractId("  c-7kq2m9xh4t ") == "C-7KQ2M9XH4T");
    CHECK_FALSE(isValidContractId("C-7KQ2M9XH4"));
}

TEST_CASE("masking shows four characters and hides the rest", "[domain][ids]") {
    CHECK(maskAccessId("0037123456") == "0037xxxxxx");
    CHECK(maskAccessId("123") == "xxxxxxxxxx");
    CHECK(maskContractId("C-7KQ2M9XH4T") == "C-7Kxxxxxxxx");
}

TEST_CASE("display name follows DOMAIN.md", "[domain][ids]") {
    CHECK(displayName(2026, "SCS", "4648141", "0037123456") == "26 SCS-4648141-unk (0037xxxxxx)");
    CHECK(displayName(2105, "Gold", "12", "1234567890") == "05 Gold-12-unk (1234xxxxxx)");
}

TEST_CASE("plan catalogue maps each benefit to one plan", "[domain][plans]") {
    Plan gold{"gold", "Partner Gold Support 20Pack", Benefit::Gold, "Gold", 20, 20, Scope::Any, 395};
    Plan scs{"scs", "Signature Cloud Support", Benefit::Scs, "SCS", 20, 0, Scope::Cloud, 365};
    PlanCatalogue cat({gold, scs});
    REQUIRE(cat.forBenefit(Benefit::Gold) != nullptr);
    CHECK(cat.forBenefit(Benefit::Gold)->incidents == 20);
    CHECK(cat.forBenefit(Benefit::Scs)->scope == Scope::Cloud);
    CHECK(cat.forBenefit(Benefit::Silver) == nullptr);
    CHECK(cat.byKey("scs")->name == "Signature Cloud Support");
    Plan gold2 = gold;
    gold2.key = "gold2";
    CHECK_THROWS_AS(PlanCatalogue({gold, gold2}), std::invalid_argument);
}

TEST_CASE("only Action Pack waits for a request", "[domain][plans]") {
    CHECK(activatesAutomatically(Benefit::Gold));
    CHECK(activatesAutomatically(Benefit::Silver));
    CHECK(activatesAutomatically(Benefit::CompetencyKit));
    CHECK_FALSE(activatesAutomatically(Benefit::ActionPack));
}

namespace {
Contact contact(const std::string& partner, const std::string& email, ContactRole role, const std::string& country,
                const std::string& location = "") {
    Contact c;
    c.partnerId = partner;
    c.email = email;
    c.role = role;
    c.country = country;
    c.locationId = location;
    return c;
}
}  // namespace

TEST_CASE("ID recipients: HQ primary, location primary for a kit, regional same-country rule", "[domain][delivery]") {
    RegionTable regions;
    regions.assign("DE", Region::Emea);
    regions.assign("FR", Region::Emea);
    regions.assign("VN", Region::Apac);
    Partner de{"1", "Contoso", Membership::Gold, "DE"};
    Partner vn{"2", "Song Hong", Membership::Silver, "VN"};
    std::vector<Contact> contacts = {
        contact("1", "hq@x", ContactRole::HqPrimary, "DE"),
        contact("1", "member-de@x", ContactRole::Member, "DE"),
        contact("1", "member-fr@x", ContactRole::Member, "FR"),
        contact("1", "loc@x", ContactRole::LocationPrimary, "FR", "PAR"),
        contact("2", "hq@y", ContactRole::HqPrimary, "VN"),
        contact("2", "member-vn@y", ContactRole::Member, "VN"),
    };
    IdDeliveryPolicy on{true, &regions};
    IdDeliveryPolicy off{false, &regions};

    SECTION("EMEA with the rule on: the HQ primary and the same-country member") {
        auto r = idRecipients(de, nullptr, contacts, on);
        REQUIRE(r.primary);
        CHECK(r.primary->email == "hq@x");
        REQUIRE(r.others.size() == 1);
        CHECK(r.others[0]->email == "member-de@x");
    }
    SECTION("rule off: the primary only") {
        auto r = idRecipients(de, nullptr, contacts, off);
        CHECK(r.primary->email == "hq@x");
        CHECK(r.others.empty());
    }
    SECTION("APAC: the primary only, even with the rule on") {
        auto r = idRecipients(vn, nullptr, contacts, on);
        CHECK(r.primary->email == "hq@y");
        CHECK(r.others.empty());
    }
    SECTION("a location's kit goes to the location primary, plus same-country contacts of that location's country") {
        Location par{"PAR", "1", "Paris", "FR"};
        auto r = idRecipients(de, &par, contacts, on);
        REQUIRE(r.primary);
        CHECK(r.primary->email == "loc@x");
        REQUIRE(r.others.size() == 1);
        CHECK(r.others[0]->email == "member-fr@x");
    }
    SECTION("no primary: nobody, with the reason") {
        std::vector<Contact> onlyMembers = {contact("1", "member-de@x", ContactRole::Member, "DE")};
        auto r = idRecipients(de, nullptr, onlyMembers, on);
        CHECK(r.primary == nullptr);
        CHECK(r.others.empty());
        CHECK(r.problem.find("hq_primary") != std::string::npos);
    }
    SECTION("bouncing addresses are not added by the regional rule") {
        auto c2 = contacts;
        c2[1].addressState = AddressState::Bouncing;
        auto r = idRecipients(de, nullptr, c2, on);
        CHECK(r.others.empty());
    }
    SECTION("contacts of another partner never receive the IDs") {
        std::vector<Contact> mixed = contacts;
        mixed.push_back(contact("2", "other-partner-de@y", ContactRole::Member, "DE"));
        auto r = idRecipients(de, nullptr, mixed, on);
        for (const auto* c : r.others) CHECK(c->partnerId == "1");
    }
}

TEST_CASE("dates: strict ISO parsing, arithmetic and the four-week promise", "[domain][dates]") {
    CHECK(isIsoDate("2026-02-28"));
    CHECK_FALSE(isIsoDate("2026-02-30"));
    CHECK_FALSE(isIsoDate("2026-2-28"));
    CHECK_FALSE(isIsoDate("28.02.2026"));
    CHECK(addDays("2026-11-26", 395) == "2027-12-26");
    CHECK(addDays("2028-02-28", 1) == "2028-02-29");
    CHECK(daysBetween("2026-10-01", "2026-11-26") == 56);
    CHECK_FALSE(activationOverdue("2026-10-29", "2026-11-26"));  // 28 days: still within the promise
    CHECK(activationOverdue("2026-10-28", "2026-11-26"));        // 29 days
}
