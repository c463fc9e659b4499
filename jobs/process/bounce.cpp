// process: mail hygiene: a bounce marks the failed contact address and tells the administrators;
// it is never answered.
#include "jobs/process/message_handler.h"

#include <set>

#include "jobs/outgoing.h"

namespace sm::jobs::processing {

void MessageHandler::handleBounce(const mail::BounceInfo& bounce) {
    ++report_.bounces;
    std::set<std::string> partners;
    for (const auto& addr : bounce.recipients) {
        auto contacts = ref_.contactsByEmail(lower(addr));
        if (contacts.empty() || !bounce.permanent) continue;
        ref_.setAddressState(lower(addr), domain::AddressState::Bouncing);
        for (const auto& c : contacts) partners.insert(c.partnerId);
        if (!s_.adminAddress.empty()) {
            mail::TemplateData d;
            d.set("address", addr);
            d.set("permanent", bounce.permanent);
            std::string diag;
            for (const auto& ds : mail_.deliveryStatus)
                if (lower(ds.finalRecipient) == lower(addr)) diag = ds.status + " " + ds.diagnosticCode;
            d.set("diagnostic", diag);
            std::string list;
            for (const auto& c : contacts) list += (list.empty() ? "" : ", ") + c.partnerId;
            d.set("partners", list);
            d.set("original_subject", mail_.subject);
            d.set("contact_name", false);
            d.set("support_address", s_.supportAddress);
            auto rendered = templates_.render("admin_bounce", "en", d);
            auto msg = messageFrom(s_, rendered, now_);
            msg.to.push_back({"", s_.adminAddress});
            outbox_.enqueue(queuedRow(s_, msg, "admin_bounce"));
        }
        log_.warning("bounce: " + addr + " marked bouncing");
    }
    unanswered("bounce", bounce.recipients.empty() ? "a bounce without a failed address"
                                                   : "a bounce for " + std::to_string(bounce.recipients.size()) +
                                                         " address(es)");
}

}  // namespace sm::jobs::processing
