#include "jobs/import_reference.h"

#include <map>
#include <regex>
#include <set>

#include <Poco/String.h>

#include "io/csv.h"
#include "domain/dates.h"
#include "store/reference_data.h"
#include "store/renewals.h"

namespace sm::jobs {
namespace {

const std::regex kPartnerId("^[0-9]{1,12}$");
const std::regex kCountry("^[A-Z]{2}$");
const std::regex kLanguage("^[a-z]{2}(-[A-Za-z]{2})?$");
const std::regex kEmail(R"(^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$)");
const std::regex kLocationId("^[A-Za-z0-9_.-]{1,64}$");

struct LineChecker {
    const io::CsvRecord& rec;
    std::vector<LineProblem>& problems;
    bool ok = true;

    std::string get(const std::string& col) const {
        auto it = rec.fields.find(col);
        return it == rec.fields.end() ? std::string() : it->second;
    }
    void bad(const std::string& col, const std::string& why) {
        problems.push_back({rec.line, col, why});
        ok = false;
    }
    std::string required(const std::string& col) {
        std::string v = get(col);
        if (v.empty()) bad(col, "is empty");
        return v;
    }
    std::string matching(const std::string& col, const std::regex& re, const std::string& what, bool req = true) {
        std::string v = req ? required(col) : get(col);
        if (!v.empty() && !std::regex_match(v, re)) bad(col, "'" + v + "' is not " + what);
        return v;
    }
};

std::string upper(std::string s) { return Poco::toUpper(s); }

struct Row {
    domain::Partner partner;
    std::optional<domain::Location> location;
    domain::Contact contact;
};

int rank(domain::ContactRole r) {
    switch (r) {
        case domain::ContactRole::HqPrimary: return 2;
        case domain::ContactRole::LocationPrimary: return 1;
        case domain::ContactRole::Member: return 0;
    }
    return 0;
}

/// The file is the truth for each partner it lists (DOMAIN.md, CRM import): before the
/// upserts, a primary whose role the file changes gives it up (the schema holds one
/// hq_primary per partner and one location_primary per location) and a contact the file
/// no longer lists becomes inactive. Partners absent from the file, and partners with a
/// skipped line (the file is not whole for them), keep their contacts.
void reconcileContacts(store::ReferenceData& ref, const std::vector<Row>& good,
                       const std::set<std::string>& partnersWithBadLines, ImportReport& report) {
    std::map<std::string, std::map<std::string, const domain::Contact*>> listed;  // partner → email → contact
    for (const auto& row : good) listed[row.partner.partnerId][row.contact.email] = &row.contact;
    const std::int64_t at = store::Database::nowSeconds();
    for (const auto& [partnerId, contacts] : listed) {
        const bool whole = !partnersWithBadLines.count(partnerId);
        if (!whole) ++report.partnersNotReconciled;
        for (const auto& old : ref.contactsOf(partnerId)) {
            auto it = contacts.find(old.email);
            if (it == contacts.end()) {
                if (!whole) {
                    // Still: a role the file gives to another contact is no longer this one's.
                    for (const auto& [email, c] : contacts)
                        if (old.role != domain::ContactRole::Member && c->role == old.role &&
                            (old.role == domain::ContactRole::HqPrimary || c->locationId == old.locationId)) {
                            ref.demoteToMember(partnerId, old.email);
                            ++report.contactsDemoted;
                            break;
                        }
                    continue;
                }
                ref.deactivateContact(partnerId, old.email, at);
                ++report.contactsDeactivated;
                continue;
            }
            const domain::Contact& now = *it->second;
            const bool sameRole = now.role == old.role && (old.role != domain::ContactRole::LocationPrimary ||
                                                           now.locationId == old.locationId);
            if (sameRole) continue;
            if (rank(now.role) > rank(old.role)) ++report.contactsPromoted;
            else ++report.contactsDemoted;
            if (old.role != domain::ContactRole::Member) ref.demoteToMember(partnerId, old.email);
        }
    }
}

}  // namespace

std::string ImportReport::summary() const {
    std::string s = std::to_string(lines) + " lines: " + std::to_string(inserted) + " new, " +
                    std::to_string(updated) + " updated, " + std::to_string(unchanged) + " unchanged";
    if (locationsInserted || locationsUpdated)
        s += "; locations " + std::to_string(locationsInserted) + " new, " + std::to_string(locationsUpdated) + " updated";
    if (contactsInserted || contactsUpdated)
        s += "; contacts " + std::to_string(contactsInserted) + " new, " + std::to_string(contactsUpdated) + " updated";
    if (contactsPromoted || contactsDemoted || contactsDeactivated)
        s += "; contacts " + std::to_string(contactsPromoted) + " promoted, " + std::to_string(contactsDemoted) +
             " demoted, " + std::to_string(contactsDeactivated) + " deactivated";
    if (partnersNotReconciled)
        s += "; " + std::to_string(partnersNotReconciled) +
             " partners with a bad line kept their unlisted contacts";
    if (skipped) s += "; " + std::to_string(skipped) + " bad lines skipped";
    if (!loaded) s += "; nothing loaded";
    return s;
}

ImportReport importPartners(store::Database& db, const config::Settings& settings, const std::string& path,
                            bool skipBadLines, ProgressSink* progress) {
    auto records = io::readCsv(path,
                                {"partner_id", "partner_name", "membership", "hq_country", "contact_email",
                                 "contact_name", "contact_role", "contact_country", "contact_language"},
                                {"location_id", "location_name", "location_country"});
    ImportReport report;
    report.lines = static_cast<int>(records.size());

    std::vector<Row> good;
    std::map<std::string, std::pair<domain::Partner, int>> partnersSeen;
    std::map<std::string, std::pair<domain::Location, int>> locationsSeen;
    std::map<std::string, int> contactsSeen;  // partner|email → line
    std::map<std::string, int> hqPrimary;     // partner → line
    std::map<std::string, int> locPrimary;    // location → line

    std::set<std::string> partnersWithBadLines;
    for (const auto& rec : records) {
        LineChecker c{rec, report.problems};
        if (!rec.error.empty()) {
            c.bad("", rec.error);
            continue;
        }
        struct NoteBad {  // whatever the reason a line is skipped, its partner is not fully known
            LineChecker& c;
            std::set<std::string>& out;
            ~NoteBad() {
                if (!c.ok) out.insert(c.get("partner_id"));
            }
        } noteBad{c, partnersWithBadLines};
        Row row;
        auto& p = row.partner;
        p.partnerId = c.matching("partner_id", kPartnerId, "a partner ID (digits)");
        p.name = c.required("partner_name");
        std::string membership = Poco::toLower(c.required("membership"));
        if (auto m = domain::parseMembership(membership)) p.membership = *m;
        else if (!membership.empty()) c.bad("membership", "'" + membership + "' is not one of none, gold, silver, action_pack");
        p.hqCountry = upper(c.get("hq_country"));
        if (p.hqCountry.empty()) c.bad("hq_country", "is empty");
        else if (!std::regex_match(p.hqCountry, kCountry)) c.bad("hq_country", "'" + p.hqCountry + "' is not a two-letter country code");
        else if (!settings.regions.empty() && settings.regions.regionOf(p.hqCountry) == domain::Region::Unknown)
            c.bad("hq_country", "'" + p.hqCountry + "' is in no region of the configuration (regions.*)");

        std::string locId = c.matching("location_id", kLocationId, "a location ID", false);
        if (!locId.empty()) {
            domain::Location l;
            l.locationId = locId;
            l.partnerId = p.partnerId;
            l.name = c.get("location_name");
            l.country = upper(c.get("location_country"));
            if (l.country.empty()) c.bad("location_country", "is required with a location_id");
            else if (!std::regex_match(l.country, kCountry)) c.bad("location_country", "'" + l.country + "' is not a two-letter country code");
            row.location = l;
        }

        auto& k = row.contact;
        k.partnerId = p.partnerId;
        k.locationId = locId;
        k.email = Poco::toLower(c.matching("contact_email", kEmail, "an email address"));
        k.name = c.required("contact_name");
        std::string role = Poco::toLower(c.required("contact_role"));
        if (auto r = domain::parseContactRole(role)) k.role = *r;
        else if (!role.empty()) c.bad("contact_role", "'" + role + "' is not one of hq_primary, location_primary, member");
        if (k.role == domain::ContactRole::LocationPrimary && locId.empty())
            c.bad("contact_role", "location_primary needs a location_id");
        k.country = upper(c.get("contact_country"));
        if (k.country.empty()) c.bad("contact_country", "is empty");
        else if (!std::regex_match(k.country, kCountry)) c.bad("contact_country", "'" + k.country + "' is not a two-letter country code");
        k.language = Poco::toLower(c.matching("contact_language", kLanguage, "a language code such as en or vi"));

        if (!c.ok) continue;
        // Consistency with earlier lines of the same file.
        auto [pit, newPartner] = partnersSeen.emplace(p.partnerId, std::make_pair(p, rec.line));
        if (!newPartner) {
            const auto& first = pit->second.first;
            if (first.name != p.name || first.membership != p.membership || first.hqCountry != p.hqCountry) {
                c.bad("partner_id", "partner " + p.partnerId + " has other name, membership or country on line " +
                                        std::to_string(pit->second.second));
                continue;
            }
        }
        if (row.location) {
            auto [lit, newLoc] = locationsSeen.emplace(locId, std::make_pair(*row.location, rec.line));
            if (!newLoc && (lit->second.first.partnerId != p.partnerId || lit->second.first.country != row.location->country ||
                            lit->second.first.name != row.location->name)) {
                c.bad("location_id", "location " + locId + " is described differently on line " + std::to_string(lit->second.second));
                continue;
            }
        }
        auto [cit, newContact] = contactsSeen.emplace(p.partnerId + "|" + k.email, rec.line);
        if (!newContact) {
            c.bad("contact_email", k.email + " is already a contact of partner " + p.partnerId + " on line " +
                                       std::to_string(cit->second));
            continue;
        }
        if (k.role == domain::ContactRole::HqPrimary) {
            auto [hit, first] = hqPrimary.emplace(p.partnerId, rec.line);
            if (!first) {
                c.bad("contact_role", "partner " + p.partnerId + " already has an hq_primary contact on line " +
                                          std::to_string(hit->second));
                continue;
            }
        }
        if (k.role == domain::ContactRole::LocationPrimary) {
            auto [lit, first] = locPrimary.emplace(locId, rec.line);
            if (!first) {
                c.bad("contact_role", "location " + locId + " already has a location_primary contact on line " +
                                          std::to_string(lit->second));
                continue;
            }
        }
        good.push_back(std::move(row));
    }

    report.skipped = static_cast<int>(records.size() - good.size());
    if (!report.problems.empty() && !skipBadLines) return report;

    store::ReferenceData ref(db);
    store::Transaction tx(db);
    std::set<std::string> partnersDone, locationsDone;
    reconcileContacts(ref, good, partnersWithBadLines, report);
    progressBegin(progress, static_cast<std::int64_t>(good.size()));
    for (const auto& row : good) {
        if (partnersDone.insert(row.partner.partnerId).second) {
            switch (ref.upsertPartner(row.partner, settings.regions.regionOf(row.partner.hqCountry))) {
                case store::Upsert::Inserted: ++report.inserted; break;
                case store::Upsert::Updated: ++report.updated; break;
                case store::Upsert::Unchanged: ++report.unchanged; break;
            }
        }
        if (row.location && locationsDone.insert(row.location->locationId).second) {
            auto r = ref.upsertLocation(*row.location);
            report.locationsInserted += r == store::Upsert::Inserted;
            report.locationsUpdated += r == store::Upsert::Updated;
        }
        report.contactsDemoted += ref.demoteOtherPrimaries(row.contact);
        auto r = ref.upsertContact(row.contact);
        report.contactsInserted += r == store::Upsert::Inserted;
        report.contactsUpdated += r == store::Upsert::Updated;
        progressAdvance(progress);
    }
    tx.commit();
    report.loaded = true;
    return report;
}

ImportReport importRenewals(store::Database& db, const config::Settings&, const std::string& path, bool skipBadLines,
                            ProgressSink* progress) {
    auto records = io::readCsv(path, {"partner_id", "benefit", "renewal_date"}, {"location_id"});
    ImportReport report;
    report.lines = static_cast<int>(records.size());
    store::ReferenceData ref(db);
    std::vector<domain::Renewal> good;
    std::map<std::string, int> seen;
    for (const auto& rec : records) {
        LineChecker c{rec, report.problems};
        if (!rec.error.empty()) {
            c.bad("", rec.error);
            continue;
        }
        domain::Renewal r;
        r.partnerId = c.matching("partner_id", kPartnerId, "a partner ID (digits)");
        if (c.ok && !ref.partner(r.partnerId)) c.bad("partner_id", "partner " + r.partnerId + " is unknown (import it with import-partners first)");
        std::string benefit = Poco::toLower(c.required("benefit"));
        if (auto b = domain::parseBenefit(benefit)) r.benefit = *b;
        else if (!benefit.empty()) c.bad("benefit", "'" + benefit + "' is not one of gold, silver, action_pack, scs, asfp, competency_kit");
        r.renewalDate = c.required("renewal_date");
        if (!r.renewalDate.empty() && !domain::isIsoDate(r.renewalDate))
            c.bad("renewal_date", "'" + r.renewalDate + "' is not a date of the form YYYY-MM-DD");
        r.locationId = c.get("location_id");
        if (c.ok && r.benefit == domain::Benefit::CompetencyKit) {
            if (r.locationId.empty()) c.bad("location_id", "a competency_kit renewal needs the location it was bought for");
            else {
                auto loc = ref.location(r.locationId);
                if (!loc) c.bad("location_id", "location " + r.locationId + " is unknown");
                else if (loc->partnerId != r.partnerId)
                    c.bad("location_id", "location " + r.locationId + " belongs to partner " + loc->partnerId);
            }
        } else if (c.ok && !r.locationId.empty()) {
            c.bad("location_id", "only competency_kit renewals name a location");
        }
        if (!c.ok) continue;
        std::string key = r.partnerId + "|" + benefit + "|" + r.locationId + "|" + r.renewalDate;
        auto [it, first] = seen.emplace(key, rec.line);
        if (!first) {
            c.bad("", "the same renewal is already on line " + std::to_string(it->second));
            continue;
        }
        good.push_back(r);
    }
    report.skipped = static_cast<int>(records.size() - good.size());
    if (!report.problems.empty() && !skipBadLines) return report;

    store::Renewals renewals(db);
    store::Transaction tx(db);
    progressBegin(progress, static_cast<std::int64_t>(good.size()));
    for (const auto& r : good) {
        if (renewals.addIfAbsent(r)) ++report.inserted;
        else ++report.unchanged;
        progressAdvance(progress);
    }
    tx.commit();
    report.loaded = true;
    return report;
}

}  // namespace sm::jobs
