#include "store/renewals.h"

#include <Poco/Data/RecordSet.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {

bool Renewals::addIfAbsent(const domain::Renewal& r) {
    std::string partnerId = r.partnerId, benefit = domain::toString(r.benefit), location = r.locationId,
                date = r.renewalDate;
    int n = 0;
    db_.session() << db_.sql("SELECT COUNT(*) FROM renewals WHERE partner_id = ? AND benefit = ? AND location_id = ? "
                             "AND renewal_date = ?"),
        use(partnerId), use(benefit), use(location), use(date), into(n), now;
    if (n > 0) return false;
    std::int64_t at = Database::nowSeconds();
    db_.session() << db_.sql("INSERT INTO renewals (partner_id, benefit, location_id, renewal_date, imported_at) "
                             "VALUES (?, ?, ?, ?, ?)"),
        use(partnerId), use(benefit), use(location), use(date), use(at), now;
    return true;
}

std::int64_t Renewals::countPending(const std::string& partnerId) {
    std::string pid = partnerId;
    std::int64_t n = 0;
    if (pid.empty())
        db_.session() << "SELECT COUNT(*) FROM renewals WHERE state = 'pending'", into(n), now;
    else
        db_.session() << db_.sql("SELECT COUNT(*) FROM renewals WHERE state = 'pending' AND partner_id = ?"), use(pid),
            into(n), now;
    return n;
}

std::vector<domain::Renewal> Renewals::pending(std::int64_t afterId, int limit, const std::string& partnerId,
                                               bool claim) {
    // Kept prepared (one text per shape): activation reads its groups through it.
    std::string q = "SELECT id, partner_id, benefit, location_id, renewal_date FROM renewals "
                    "WHERE state = 'pending' AND id > ?";
    if (!partnerId.empty()) q += " AND partner_id = ?";
    q += " ORDER BY id LIMIT ?";
    if (claim) q += db_.claimClause();
    auto st = db_.cached(q.c_str());
    int i = 1;
    st.bind(i++, afterId);
    if (!partnerId.empty()) st.bind(i++, partnerId);
    st.bind(i, std::int64_t{limit});
    std::vector<domain::Renewal> out;
    while (st.step()) {
        domain::Renewal r;
        r.id = st.int64(0);
        r.partnerId = st.text(1);
        r.benefit = domain::parseBenefit(st.text(2)).value_or(domain::Benefit::Gold);
        r.locationId = st.text(3);
        r.renewalDate = st.text(4);
        out.push_back(std::move(r));
    }
    return out;
}

void Renewals::markActivated(const std::vector<std::int64_t>& renewalIds) {
    if (renewalIds.empty()) return;
    const std::string sql = std::string("UPDATE renewals SET state = 'activated', activated_at = ? WHERE id IN ") +
                            db_.inIdList() + " AND state = 'pending'";
    db_.cached(sql.c_str()).bind(1, Database::nowSeconds()).bind(2, jsonList(renewalIds)).run();
}

std::int64_t Renewals::count() {
    std::int64_t n = 0;
    db_.session() << "SELECT COUNT(*) FROM renewals", into(n), now;
    return n;
}

}  // namespace sm::store
