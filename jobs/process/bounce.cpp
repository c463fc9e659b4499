// process: mail hygiene: a bounce marks the failed contact address and tells the administrators;
// it is never answered.
#include "jobs/process/message_handler.h"

#include <set>

#include "jobs/outgoing.h"

using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs::processing {

/// The outbox row a bounce is about: the VERP address it was returned to
/// (delivery.bounce_address), or the Message-ID in its returned headers. nullopt: not
/// about mail we sent (a forged or stray DSN), which changes nothing.
std::optional<store::OutboxRow> MessageHandler::bouncedMail(std::string& matchedBy) {
    if (!s_.delivery.bounceAddress.empty()) {
        std::vector<std::string> addresses;
        for (const auto& a : mail_.to) addresses.push_back(a.email);
        for (const auto& a : mail_.cc) addresses.push_back(a.email);
        for (const auto& [name, value] : mail_.headers) {
            const std::string n = lower(name);
            if (n == "delivered-to" || n == "x-original-to" || n == "envelope-to") addresses.push_back(value);
        }
        for (const auto& a : addresses)
            if (auto id = outboxIdOfReturnPath(s_.delivery.bounceAddress, a))
                if (auto row = outbox_.byId(id)) {
                    matchedBy = "verp";
                    return row;
                }
    }
    if (!mail_.returnedMessageId.empty())
        if (auto row = outbox_.byMessageId(mail_.returnedMessageId)) {
            matchedBy = "message_id";
            return row;
        }
    return std::nullopt;
}

void MessageHandler::handleBounce(const mail::BounceInfo& bounce) {
    ++report_.bounces;
    std::string matchedBy;
    auto ours = bouncedMail(matchedBy);
    std::string named;
    for (const auto& addr : bounce.recipients) named += (named.empty() ? "" : ",") + lower(addr);
    int marked = 0;
    std::set<std::string> partners;
    for (const auto& addr : bounce.recipients) {
        if (!ours) break;
        // Only an address the bounced mail was sent to: a bounce of mail to x names x.
        bool sentTo = false;
        for (const auto& r : ours->recipients) sentTo = sentTo || lower(r) == lower(addr);
        if (!sentTo) continue;
        auto contacts = ref_.contactsByEmail(lower(addr));
        if (contacts.empty() || !bounce.permanent) continue;
        ref_.setAddressState(lower(addr), domain::AddressState::Bouncing);
        ++marked;
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
            flushAnswers();  // the outbox in the order the rows were made
            outbox_.enqueue(queuedRow(s_, msg, "admin_bounce"));
        }
        log_.warning("bounce of " + ours->messageId + " (" + matchedBy + "): " + addr + " marked bouncing");
    }
    {
        std::int64_t in = row_->id, at = now_.epochTime(), acted = marked;
        Poco::Nullable<std::int64_t> outboxRef;
        if (ours) outboxRef = ours->id;
        std::string by = ours ? matchedBy : "none";
        db_.session() << db_.sql("INSERT INTO bounces (inbound_ref, outbox_ref, matched_by, recipients, acted, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)"),
            use(in), use(outboxRef), use(by), use(named), use(acted), use(at), now;
    }
    // Never answered (no backscatter); the reason says whether it was ours and what it changed.
    std::string why;
    if (!ours) {
        why = "a bounce not about mail we sent (no VERP address of ours, no Message-ID of our outbox" +
              (mail_.returnedMessageId.empty() ? std::string() : ": " + mail_.returnedMessageId) +
              "), naming " + (named.empty() ? "no one" : named) + ": recorded, nothing changed";
    } else if (bounce.recipients.empty()) {
        why = "a bounce of " + ours->messageId + " (" + matchedBy + ") without a failed address";
    } else {
        why = "a bounce of " + ours->messageId + " (" + matchedBy + ") for " +
              std::to_string(bounce.recipients.size()) + " address(es), " + std::to_string(marked) +
              " marked bouncing";
    }
    unanswered(ours ? "bounce" : "stray_bounce", why);
}

}  // namespace sm::jobs::processing
