// process: DOMAIN.md flow 10: the balance and cases of the contracts the sender may see.
#include "jobs/process/message_handler.h"

#include <set>

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs::processing {

/// DOMAIN.md flow 10: balance and cases of the contracts this address may see:
/// the ones it is linked to, and all of its partner's for a primary contact.
void MessageHandler::handleBenefits() {
    std::set<std::int64_t> ids;
    const bool vouched = authenticated("no contract listed");
    if (vouched) {
        for (auto id : incidents_.linkedContracts(sender_)) ids.insert(id);
        for (const auto& c : ref_.contactsByEmail(sender_))
            if (c.role != domain::ContactRole::Member)
                for (const auto& k : contracts_.ofPartner(c.partnerId))
                    if (c.role == domain::ContactRole::HqPrimary || k.locationId == c.locationId) ids.insert(k.id);
    }
    kainjow::mustache::data list{kainjow::mustache::data::type::list};
    for (auto id : ids) {
        auto c = contracts_.byId(id);
        if (!c) continue;
        kainjow::mustache::data item;
        item.set("display_name", c->displayName);
        item.set("state", domain::toString(c->state));
        // The templates say the state in their own language.
        item.set("state_" + domain::toString(c->state), true);
        item.set("expires_on", c->expiresOn);
        item.set("incidents_left", std::to_string(contracts_.balance(c->id)));
        item.set("hours", std::to_string(c->hoursGranted));
        int open = 0, closed = 0;
        std::int64_t ref = c->id;
        db_.session() << db_.sql("SELECT COALESCE(SUM(CASE WHEN state = 'open' THEN 1 ELSE 0 END), 0), "
                                 "COALESCE(SUM(CASE WHEN state = 'closed' THEN 1 ELSE 0 END), 0) "
                                 "FROM incidents WHERE contract_ref = ?"),
            use(ref), into(open), into(closed), now;
        item.set("open_cases", std::to_string(open));
        item.set("closed_cases", std::to_string(closed));
        std::vector<std::string> openNumbers;
        db_.session() << db_.sql("SELECT case_number FROM incidents WHERE contract_ref = ? AND state = 'open' "
                                 "ORDER BY id"),
            use(ref), into(openNumbers), now;
        std::string joined;
        for (const auto& n : openNumbers) joined += (joined.empty() ? "" : ", ") + n;
        if (joined.empty()) item.set("open_case_numbers", false);
        else item.set("open_case_numbers", joined);
        list.push_back(item);
    }
    mail::TemplateData d;
    d.set("contracts", list);
    d.set("has_contracts", !ids.empty());
    reply("benefits", "benefits", d, languageOf(sender_));
    finish("done", "benefits", sender_,
           "benefits: " + std::to_string(ids.size()) + " contracts listed" + (vouched ? "" : ", sender not authenticated"));
}

}  // namespace sm::jobs::processing
