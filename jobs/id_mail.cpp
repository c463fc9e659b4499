#include "jobs/id_mail.h"
#include "jobs/outgoing.h"

#include <algorithm>

#include "mail/compose.h"
#include "store/contracts.h"
#include "store/reference_data.h"

namespace sm::jobs {
namespace {

// The mail itself, whether its bytes are composed now (a resend) or at delivery.
mail::OutgoingMessage idMailMessage(const config::Settings& settings, const mail::TemplateSet& templates,
                                    const domain::Partner& partner, const domain::Contract& contract,
                                    const domain::Plan& plan, const domain::IdRecipients& recipients,
                                    const Poco::Timestamp& date, const ResendRequest* resent) {
    const domain::Contact& primary = *recipients.primary;
    mail::TemplateData data;
    data.set("contact_name", primary.name);
    data.set("partner_name", partner.name);
    data.set("partner_id", partner.partnerId);
    data.set("plan_name", plan.name);
    data.set("display_name", contract.displayName);
    data.set("access_id", contract.accessId);
    data.set("contract_id", contract.contractId);
    data.set("activated_on", contract.activatedOn);
    data.set("expires_on", contract.expiresOn);
    data.set("incidents", std::to_string(plan.incidents));
    data.set("hours", std::to_string(plan.hours));
    data.set("support_address", settings.supportAddress);
    data.set("scope_text", scopeText(plan.scope, primary.language));
    data.set("resent", resent != nullptr);
    if (resent) {
        data.set("resent_by", resent->askedBy);
        data.set("resent_at", resent->askedAt);
    }
    auto rendered = templates.render("id_mail", primary.language, data);

    auto msg = messageFrom(settings, rendered, date);
    msg.to.push_back({primary.name, primary.email});
    for (const auto* c : recipients.others) msg.cc.push_back({c->name, c->email});
    return msg;
}

}  // namespace

std::string scopeText(domain::Scope scope, const std::string& language) {
    const bool vi = language == "vi";
    switch (scope) {
        case domain::Scope::Cloud: return vi ? "chỉ các sản phẩm đám mây" : "cloud products only";
        case domain::Scope::OnPrem: return vi ? "các sản phẩm tại chỗ" : "on-premises products";
        case domain::Scope::Any: break;
    }
    return vi ? "mọi sản phẩm dùng ID truy cập" : "all products that use Access IDs";
}

store::OutboxRow buildIdMail(const config::Settings& settings, const mail::TemplateSet& templates,
                             const domain::Partner& partner, const domain::Contract& contract,
                             const domain::Plan& plan, const domain::IdRecipients& recipients,
                             const Poco::Timestamp& now, const ResendRequest* resent) {
    return queuedRow(settings, idMailMessage(settings, templates, partner, contract, plan, recipients, now, resent),
                     "id_mail", contract.id);
}

store::OutboxRow queuedIdMail(const config::Settings& settings, const domain::Contract& contract,
                              const domain::IdRecipients& recipients) {
    store::OutboxRow row;
    row.messageId = mail::newMessageId(settings.messageIdDomain);
    row.kind = "id_mail";
    row.envelopeFrom = settings.from.email;
    row.recipients.push_back(recipients.primary->email);
    for (const auto* c : recipients.others) row.recipients.push_back(c->email);
    row.contractRef = contract.id;
    return row;
}

void checkIdMailRenders(const config::Settings& settings, const mail::TemplateSet& templates) {
    auto languages = templates.languages("id_mail");
    if (std::find(languages.begin(), languages.end(), "en") == languages.end()) languages.push_back("en");
    domain::Partner partner;
    partner.partnerId = "1000000";
    partner.name = "Sample Partner";
    domain::Contract contract;
    contract.accessId = "0000000000";
    contract.contractId = "SAMPLE";
    contract.displayName = "26 Gold-1000000-unk (0000xxxxxx)";
    contract.activatedOn = contract.expiresOn = "2026-01-01";
    domain::Plan plan;
    plan.name = "Sample Plan";
    for (const auto& language : languages) {
        domain::Contact primary;
        primary.email = "sample@example.com";
        primary.name = "Sample Contact";
        primary.language = language;
        domain::IdRecipients recipients;
        recipients.primary = &primary;
        mail::compose(idMailMessage(settings, templates, partner, contract, plan, recipients, Poco::Timestamp(), nullptr));
    }
}

std::string OutboxRenderer::bytesOf(const store::OutboxRow& row) const {
    if (!row.bytes.empty()) return row.bytes;
    const std::string which = "outbox mail #" + std::to_string(row.id) + " (" + row.kind + ")";
    if (row.kind != "id_mail" || row.contractRef == 0 || row.recipients.empty())
        throw RenderError(which + " holds no bytes and names no contract to render it from");
    const auto contract = store::Contracts(db_).byId(row.contractRef);
    if (!contract) throw RenderError(which + ": contract #" + std::to_string(row.contractRef) + " is gone");
    store::ReferenceData ref(db_);
    const auto partner = ref.partner(contract->partnerId);
    if (!partner) throw RenderError(which + ": partner " + contract->partnerId + " is gone");
    const domain::Plan* plan = settings_.plans.byKey(contract->planKey);
    if (!plan) throw RenderError(which + ": no plan '" + contract->planKey + "' in the configuration");
    // The recipients were chosen at activation (DOMAIN.md flow 3); their names and
    // language are read now. An address no longer on record gets its mail in
    // English without a display name.
    const auto contacts = ref.contactsOf(contract->partnerId);
    std::vector<domain::Contact> people;
    for (const auto& email : row.recipients) {
        domain::Contact person;
        person.email = email;
        for (const auto& c : contacts)
            if (c.email == email) person = c;
        people.push_back(std::move(person));
    }
    domain::IdRecipients recipients;
    recipients.primary = &people.front();
    for (std::size_t i = 1; i < people.size(); ++i) recipients.others.push_back(&people[i]);
    try {
        auto msg = idMailMessage(settings_, templates_, *partner, *contract, *plan, recipients,
                                 Poco::Timestamp::fromEpochTime(row.createdAt), nullptr);
        msg.messageId = row.messageId;
        return mail::compose(msg).bytes;
    } catch (const std::exception& e) {
        throw RenderError(which + ": " + e.what());
    }
}

}  // namespace sm::jobs
