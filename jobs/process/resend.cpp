// process: DOMAIN.md flows 4 and 2: resend requests (the IDs to the primary on record, a neutral
// answer to the sender) and Action Pack activation asked for by mail.
#include <Poco/DateTimeFormatter.h>

#include "jobs/process/message_handler.h"

#include <set>

#include "domain/id_delivery.h"
#include "domain/secure_random.h"
#include "jobs/activate.h"
#include "jobs/id_mail.h"
#include "store/disclosures.h"

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs::processing {

int MessageHandler::countSince(const std::string& column, const std::string& value, std::int64_t since) {
    int n = 0;
    std::string v = value;
    db_.session() << db_.sql("SELECT COUNT(*) FROM resends WHERE " + column + " = ? AND created_at >= ?"), use(v),
        use(since), into(n), now;
    return n;
}

void MessageHandler::recordResend(const std::string& partnerId, const std::string& outcome) {
    std::string p = partnerId, snd = sender_, o = outcome;
    std::int64_t in = row_->id, at = now_.epochTime();
    db_.session() << db_.sql("INSERT INTO resends (partner_id, sender, inbound_ref, outcome, created_at) "
                             "VALUES (?, ?, ?, ?, ?)"),
        use(p), use(snd), use(in), use(o), use(at), now;
}

/// DOMAIN.md flow 4: the IDs go to the primary on record (and, by the regional
/// rule, to the asking contact in the benefit's country); the sender always gets
/// the same neutral answer, so a stranger learns nothing.
void MessageHandler::handleResend() {
    const std::int64_t since = now_.epochTime() - 86400;
    std::string outcome;
    int sent = 0;
    if (countSince("sender", sender_, since) >= s_.process.resendsPerSenderPerDay) {
        recordResend("", "rate_limited_sender");
        return unanswered("rate_limited", "resend requests over the sender's daily limit");
    }
    auto contacts = ref_.contactsByEmail(sender_);
    if (contacts.empty() && ref_.onlyInactiveContact(sender_)) {
        // The CRM's last file no longer lists this address: it gets nothing.
        recordResend("", "inactive_contact");
        outcome = "refused: a contact the CRM no longer lists";
        log_.notice("inbound #" + std::to_string(row_->id) + ": resend request from " + sender_ +
                    " refused: a contact the CRM's last file no longer lists");
    } else if (contacts.empty() || !authenticated("no IDs resent")) {
        recordResend("", contacts.empty() ? "unknown_sender" : "not_authenticated");
        outcome = contacts.empty() ? "unknown sender" : "sender not authenticated";
    } else {
        // A partner ID named in the mail narrows it to that partner.
        std::set<std::string> named;
        std::string hay = mail_.subject + " " + mail_.text;
        for (const auto& c : contacts)
            if (hay.find(c.partnerId) != std::string::npos) named.insert(c.partnerId);
        domain::IdDeliveryPolicy policy{s_.activation.regionalRule, &s_.regions};
        for (const auto& asking : contacts) {
            if (!named.empty() && !named.count(asking.partnerId)) continue;
            if (countSince("partner_id", asking.partnerId, since) >= s_.process.resendsPerPartnerPerDay) {
                recordResend(asking.partnerId, "rate_limited_partner");
                continue;
            }
            auto partner = ref_.partner(asking.partnerId);
            if (!partner) continue;
            auto all = ref_.contactsOf(asking.partnerId);
            int forPartner = 0;
            for (const auto& c : contracts_.ofPartner(asking.partnerId)) {
                if (c.state != domain::ContractState::Active) continue;
                const domain::Plan* plan = s_.plans.byKey(c.planKey);
                if (!plan) continue;
                std::optional<domain::Location> loc;
                if (!c.locationId.empty()) loc = ref_.location(c.locationId);
                // The primary only; the asking contact too where the regional rule allows it.
                auto r = domain::idRecipients(*partner, loc ? &*loc : nullptr, all,
                                              domain::IdDeliveryPolicy{false, &s_.regions});
                if (!r.primary) continue;
                auto widened = domain::idRecipients(*partner, loc ? &*loc : nullptr, all, policy);
                for (const auto* o : widened.others)
                    if (o->email == asking.email) r.others.push_back(o);
                const ResendRequest asked{sender_, Poco::DateTimeFormatter::format(now_, "%Y-%m-%d %H:%M UTC")};
                flushAnswers();  // the outbox in the order the rows were made
                const auto mail = buildIdMail(s_, templates_, *partner, c, *plan, r, now_, &asked);
                store::Disclosures(db_).recordIdMail(mail, outbox_.enqueue(mail), store::disclosure_rule::kResend,
                                                     store::disclosure_rule::kResendRegionalRule);
                ++forPartner;
            }
            recordResend(asking.partnerId, forPartner ? "sent" : "no_active_contract");
            sent += forPartner;
        }
        outcome = std::to_string(sent) + " ID mails queued";
    }
    mail::TemplateData d;
    reply("resend_ack", "resend_ack", d, languageOf(sender_));
    log_.information("resend request inbound #" + std::to_string(row_->id) + " from " + sender_ + ": " + outcome);
    finish("done", "resend", sender_, "resend: " + outcome);
}

/// DOMAIN.md flow 2: an Action Pack benefit is activated when a known contact asks.
void MessageHandler::handleActivationRequest() {
    std::vector<std::string> partners;
    if (authenticated("no Action Pack activated"))
        for (const auto& c : ref_.contactsByEmail(sender_)) {
            auto p = ref_.partner(c.partnerId);
            if (p && p->membership == domain::Membership::ActionPack) partners.push_back(c.partnerId);
        }
    int activated = 0;
    for (const auto& pid : partners) {
        ActivationOptions opts;
        opts.partnerId = pid;
        opts.onlyBenefit = domain::Benefit::ActionPack;
        opts.ownTransactions = false;
        domain::SystemRandom random;
        auto report = activate(db_, s_, templates_, random, opts, log_, now_);
        activated += report.activated;
    }
    // The same neutral answer as a resend: the IDs themselves go to the primary contact.
    mail::TemplateData d;
    reply("resend_ack", "resend_ack", d, languageOf(sender_));
    finish("done", "resend", sender_, "action pack request: " + std::to_string(activated) + " activated");
}

}  // namespace sm::jobs::processing
