#include "jobs/id_mail.h"
#include "jobs/outgoing.h"

#include "mail/compose.h"

namespace sm::jobs {
std::string scopeText(domain::Scope scope, const std::string& language) {
    const bool vi = language == "vi";
    switch (scope) {
        case domain::Scope::Cloud: return vi ? "chỉ các sản phẩm đám mây" : "cloud products only";
        case domain::Scope::OnPrem: return vi ? "các sản phẩm tại chỗ" : "on-premises products";
        case domain::Scope::Any: break;
    }
    return vi ? "mọi sản phẩm dùng ID truy cập" : "all products that use Access IDs";
}

store::OutboxRow buildIdMail(const app::Settings& settings, const mail::TemplateSet& templates,
                             const domain::Partner& partner, const domain::Contract& contract,
                             const domain::Plan& plan, const domain::IdRecipients& recipients,
                             const Poco::Timestamp& now, const ResendRequest* resent) {
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

    auto msg = messageFrom(settings, rendered, now);
    msg.to.push_back({primary.name, primary.email});
    for (const auto* c : recipients.others) msg.cc.push_back({c->name, c->email});
    return queuedRow(settings, msg, "id_mail", contract.id);
}

}  // namespace sm::jobs
