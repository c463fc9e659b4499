// The mail that carries a contract's Access ID and Contract ID (DOMAIN.md flow
// 3): rendered from templates/id_mail in the primary recipient's language,
// composed once, and queued as an outbox row. Used by activation now and by
// resends later, so both say the same thing.
#pragma once

#include "app/config.h"
#include "domain/id_delivery.h"
#include "domain/model.h"
#include "domain/plans.h"
#include "mail/templates.h"
#include "store/outbox.h"

namespace sm::jobs {

/// What a contract's scope covers, in words of the language ("cloud products only").
std::string scopeText(domain::Scope scope, const std::string& language);

/// Who asked for the IDs to be sent again, and when (the mail says so: the primary
/// contact learns of a request they did not make).
struct ResendRequest {
    std::string askedBy;  ///< the requester's address
    std::string askedAt;  ///< "2026-11-28 09:15 UTC"
};

/// Builds the outbox row (bytes, Message-ID, envelope) for one contract; resent
/// when the mail answers a resend request. Throws mail::TemplateError if the
/// templates cannot render.
store::OutboxRow buildIdMail(const app::Settings& settings, const mail::TemplateSet& templates,
                             const domain::Partner& partner, const domain::Contract& contract,
                             const domain::Plan& plan, const domain::IdRecipients& recipients,
                             const Poco::Timestamp& now, const ResendRequest* resent = nullptr);

}  // namespace sm::jobs
