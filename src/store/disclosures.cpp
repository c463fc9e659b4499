#include "store/disclosures.h"

#include <Poco/Data/RecordSet.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {

void Disclosures::recordIdMail(const OutboxRow& row, std::int64_t outboxId, const std::string& primaryRule,
                               const std::string& othersRule) {
    // One statement for all the mail's recipients, kept prepared per count:
    // activation records them for every ID mail.
    const std::size_t n = row.recipients.size();
    if (n == 0) return;
    std::string sql = "INSERT INTO disclosures (contract_ref, recipient, rule, outbox_ref, message_id, created_at) VALUES ";
    for (std::size_t i = 0; i < n; ++i) sql += i == 0 ? "(?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)";
    auto q = db_.cached(sql.c_str());
    const std::int64_t at = Database::nowSeconds();
    for (std::size_t i = 0; i < n; ++i) {
        const int b = static_cast<int>(i) * 6;
        q.bind(b + 1, row.contractRef).bind(b + 2, row.recipients[i]).bind(b + 3, i == 0 ? primaryRule : othersRule);
        q.bind(b + 4, outboxId).bind(b + 5, row.messageId).bind(b + 6, at);
    }
    q.run();
}

std::vector<DisclosureRow> Disclosures::ofContract(std::int64_t contractRef) {
    Statement st(db_.session());
    st << db_.sql("SELECT id, contract_ref, recipient, rule, COALESCE(outbox_ref, 0), message_id, created_at "
                  "FROM disclosures WHERE contract_ref = ? ORDER BY id"),
        use(contractRef);
    st.execute();
    RecordSet rs(st);
    std::vector<DisclosureRow> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        DisclosureRow d;
        d.id = rs[0].convert<std::int64_t>();
        d.contractRef = rs[1].convert<std::int64_t>();
        d.recipient = rs[2].convert<std::string>();
        d.rule = rs[3].convert<std::string>();
        d.outboxRef = rs[4].convert<std::int64_t>();
        d.messageId = rs[5].convert<std::string>();
        d.createdAt = rs[6].convert<std::int64_t>();
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace sm::store
