#include "store/reference_data.h"

#include <Poco/Data/RecordSet.h>

#include <algorithm>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {
namespace {

const char* const kContactColumns = "id, partner_id, location_id, email, name, country, role, language, address_state";
// A contact from a row of kContactColumns, in that order.
domain::Contact contactFrom(const CachedQuery& q) {
    domain::Contact c;
    c.id = q.int64(0);
    c.partnerId = q.text(1);
    c.locationId = q.text(2);
    c.email = q.text(3);
    c.name = q.text(4);
    c.country = q.text(5);
    c.role = domain::parseContactRole(q.text(6)).value_or(domain::ContactRole::Member);
    c.language = q.text(7);
    c.addressState = domain::parseAddressState(q.text(8)).value_or(domain::AddressState::Ok);
    return c;
}

const char* const kPartnerColumns = "partner_id, name, membership, hq_country";
// A partner from a row of kPartnerColumns, in that order.
domain::Partner partnerFrom(const CachedQuery& q) {
    domain::Partner p;
    p.partnerId = q.text(0);
    p.name = q.text(1);
    p.membership = domain::parseMembership(q.text(2)).value_or(domain::Membership::None);
    p.hqCountry = q.text(3);
    return p;
}

std::string contactsWhereSql(const char* column) {
    return std::string("SELECT ") + kContactColumns + " FROM contacts WHERE " + column + " = ? AND active = 1 ORDER BY id";
}

std::vector<domain::Contact> contactsWhere(Database& db, const char* column, const std::string& value) {
    // Kept prepared, on both engines: process asks by email for each mail's sender.
    auto q = db.cached(contactsWhereSql(column).c_str());
    q.bind(1, value);
    return ReferenceData::readContacts(q);
}

}  // namespace

Upsert ReferenceData::upsertPartner(const domain::Partner& p, domain::Region region) {
    auto existing = partner(p.partnerId);
    std::string id = p.partnerId, name = p.name, membership = domain::toString(p.membership),
                country = p.hqCountry, reg = domain::toString(region);
    std::int64_t at = Database::nowSeconds();
    if (!existing) {
        db_.session() << db_.sql("INSERT INTO partners (partner_id, name, membership, hq_country, region, updated_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)"),
            use(id), use(name), use(membership), use(country), use(reg), use(at), now;
        return Upsert::Inserted;
    }
    if (existing->name == p.name && existing->membership == p.membership && existing->hqCountry == p.hqCountry)
        return Upsert::Unchanged;
    db_.session() << db_.sql("UPDATE partners SET name = ?, membership = ?, hq_country = ?, region = ?, updated_at = ? "
                             "WHERE partner_id = ?"),
        use(name), use(membership), use(country), use(reg), use(at), use(id), now;
    return Upsert::Updated;
}

Upsert ReferenceData::upsertLocation(const domain::Location& l) {
    auto existing = location(l.locationId);
    std::string id = l.locationId, partnerId = l.partnerId, name = l.name, country = l.country;
    if (!existing) {
        db_.session() << db_.sql("INSERT INTO locations (location_id, partner_id, name, country) VALUES (?, ?, ?, ?)"),
            use(id), use(partnerId), use(name), use(country), now;
        return Upsert::Inserted;
    }
    if (existing->partnerId == l.partnerId && existing->name == l.name && existing->country == l.country)
        return Upsert::Unchanged;
    db_.session() << db_.sql("UPDATE locations SET partner_id = ?, name = ?, country = ? WHERE location_id = ?"),
        use(partnerId), use(name), use(country), use(id), now;
    return Upsert::Updated;
}

int ReferenceData::demoteOtherPrimaries(const domain::Contact& c) {
    std::string partnerId = c.partnerId, locationId = c.locationId, email = c.email;
    Statement st(db_.session());
    if (c.role == domain::ContactRole::HqPrimary) {
        st << db_.sql("UPDATE contacts SET role = 'member' WHERE partner_id = ? AND role = 'hq_primary' "
                      "AND active = 1 AND email <> ?"),
            use(partnerId), use(email);
    } else if (c.role == domain::ContactRole::LocationPrimary) {
        st << db_.sql("UPDATE contacts SET role = 'member' WHERE location_id = ? AND role = 'location_primary' "
                      "AND active = 1 AND NOT (partner_id = ? AND email = ?)"),
            use(locationId), use(partnerId), use(email);
    } else {
        return 0;
    }
    return static_cast<int>(st.execute());
}

Upsert ReferenceData::upsertContact(const domain::Contact& c) {
    std::string partnerId = c.partnerId, locationId = c.locationId, email = c.email, name = c.name,
                country = c.country, role = domain::toString(c.role), language = c.language;
    // Inactive rows too: a contact the CRM lists again comes back (its history is the same row).
    std::string oldLocation, oldName, oldCountry, oldRole, oldLanguage;
    int active = -1;
    db_.session() << db_.sql("SELECT location_id, name, country, role, language, active FROM contacts "
                             "WHERE partner_id = ? AND email = ?"),
        use(partnerId), use(email), into(oldLocation), into(oldName), into(oldCountry), into(oldRole),
        into(oldLanguage), into(active), now;
    if (active == -1) {
        db_.session() << db_.sql("INSERT INTO contacts (partner_id, location_id, email, name, country, role, language) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)"),
            use(partnerId), use(locationId), use(email), use(name), use(country), use(role), use(language), now;
        return Upsert::Inserted;
    }
    if (active == 1 && oldLocation == locationId && oldName == name && oldCountry == country && oldRole == role &&
        oldLanguage == language)
        return Upsert::Unchanged;
    db_.session() << db_.sql("UPDATE contacts SET location_id = ?, name = ?, country = ?, role = ?, language = ?, "
                             "active = 1, deactivated_at = NULL WHERE partner_id = ? AND email = ?"),
        use(locationId), use(name), use(country), use(role), use(language), use(partnerId), use(email), now;
    return Upsert::Updated;
}

void ReferenceData::demoteToMember(const std::string& partnerId, const std::string& email) {
    std::string p = partnerId, e = email;
    db_.session() << db_.sql("UPDATE contacts SET role = 'member' WHERE partner_id = ? AND email = ?"), use(p), use(e),
        now;
}

void ReferenceData::deactivateContact(const std::string& partnerId, const std::string& email, std::int64_t at) {
    std::string p = partnerId, e = email;
    db_.session() << db_.sql("UPDATE contacts SET active = 0, deactivated_at = ? WHERE partner_id = ? AND email = ?"),
        use(at), use(p), use(e), now;
    // Its links to the partner's contracts go with it: it may no longer ask without the IDs.
    db_.session() << db_.sql("DELETE FROM sender_links WHERE email = ? AND contract_ref IN "
                             "(SELECT id FROM contracts WHERE partner_id = ?)"),
        use(e), use(p), now;
}

bool ReferenceData::onlyInactiveContact(const std::string& email) {
    std::string e = email;
    int inactive = 0, active = 0;
    db_.session() << db_.sql("SELECT COALESCE(SUM(CASE WHEN active = 0 THEN 1 ELSE 0 END), 0), "
                             "COALESCE(SUM(active), 0) FROM contacts WHERE email = ?"),
        use(e), into(inactive), into(active), now;
    return inactive > 0 && active == 0;
}

std::optional<domain::Partner> ReferenceData::partner(const std::string& partnerId) {
    static const std::string sql = std::string("SELECT ") + kPartnerColumns + " FROM partners WHERE partner_id = ?";
    auto q = db_.cached(sql.c_str());
    if (!q.bind(1, partnerId).step()) return std::nullopt;
    return partnerFrom(q);
}

std::optional<domain::Location> ReferenceData::location(const std::string& locationId) {
    std::string id = locationId;
    Statement st(db_.session());
    st << db_.sql("SELECT location_id, partner_id, name, country FROM locations WHERE location_id = ?"), use(id);
    st.execute();
    RecordSet rs(st);
    if (!rs.moveFirst()) return std::nullopt;
    return domain::Location{rs[0].convert<std::string>(), rs[1].convert<std::string>(), rs[2].convert<std::string>(),
                            rs[3].convert<std::string>()};
}

std::unordered_map<std::string, PartnerContacts> ReferenceData::partnersWithContacts(
    const std::vector<std::string>& partnerIds) {
    std::unordered_map<std::string, PartnerContacts> out;
    if (partnerIds.empty()) return out;
    const std::string ids = jsonList(partnerIds);
    const std::string partnersSql =
        std::string("SELECT ") + kPartnerColumns + " FROM partners WHERE partner_id IN " + db_.inTextList();
    auto partners = db_.cached(partnersSql.c_str());
    partners.bind(1, ids);
    while (partners.step()) {
        domain::Partner p = partnerFrom(partners);
        const std::string id = p.partnerId;
        out[id].partner = std::move(p);
    }
    const std::string contactsSql = std::string("SELECT ") + kContactColumns + " FROM contacts WHERE partner_id IN " +
                                    db_.inTextList() + " AND active = 1";
    auto contacts = db_.cached(contactsSql.c_str());
    contacts.bind(1, ids);
    while (contacts.step()) {
        domain::Contact c = contactFrom(contacts);
        auto it = out.find(c.partnerId);
        if (it != out.end()) it->second.contacts.push_back(std::move(c));
    }
    // In id order, as contactsOf gives them (the order decides among equals).
    for (auto& [id, pc] : out)
        std::sort(pc.contacts.begin(), pc.contacts.end(),
                  [](const domain::Contact& a, const domain::Contact& b) { return a.id < b.id; });
    return out;
}

std::vector<domain::Contact> ReferenceData::contactsOf(const std::string& partnerId) {
    return contactsWhere(db_, "partner_id", partnerId);
}

std::vector<domain::Contact> ReferenceData::contactsByEmail(const std::string& email) {
    return contactsWhere(db_, "email", email);
}

CachedQuery ReferenceData::contactsByEmailQuery(int instance) {
    return db_.cached(contactsWhereSql("email").c_str(), instance);
}

std::vector<domain::Contact> ReferenceData::readContacts(CachedQuery& q) {
    std::vector<domain::Contact> out;
    while (q.step()) out.push_back(contactFrom(q));
    return out;
}

std::vector<domain::Contact> ReferenceData::contacts(const std::string& addressState) {
    static const std::string sql = std::string("SELECT ") + kContactColumns +
                                   " FROM contacts WHERE (? = '' OR address_state = ?) ORDER BY id";
    auto q = db_.cached(sql.c_str());
    q.bind(1, addressState).bind(2, addressState);
    std::vector<domain::Contact> out;
    while (q.step()) out.push_back(contactFrom(q));
    return out;
}

void ReferenceData::setAddressState(const std::string& email, domain::AddressState state) {
    std::string e = email, s = domain::toString(state);
    db_.session() << db_.sql("UPDATE contacts SET address_state = ? WHERE email = ?"), use(s), use(e), now;
}

}  // namespace sm::store
