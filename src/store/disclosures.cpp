#include "store/disclosures.h"

#include <Poco/Data/RecordSet.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {

void Disclosures::recordIdMail(const OutboxRow& row, std::int64_t outboxId, const std::string& primaryRule,
                               const std::string& othersRule) {
    // Kept prepared: activation records one row per recipient of every ID mail.
    const std::int64_t at = Database::nowSeconds();
    for (std::size_t i = 0; i < row.recipients.size(); ++i) {
        auto q = db_.cached("INSERT INTO disclosures (contract_ref, recipient, rule, outbox_ref, message_id, "
                            "created_at) VALUES (?, ?, ?, ?, ?, ?)");
        q.bind(1, row.contractRef).bind(2, row.recipients[i]).bind(3, i == 0 ? primaryRule : othersRule);
        q.bind(4, outboxId).bind(5, row.messageId).bind(6, at).run();
    }
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
