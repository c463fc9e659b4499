// The mail that carries a contract's Access ID and Contract ID (DOMAIN.md flow
// 3): rendered from templates/id_mail in the primary recipient's language.
// Used by activation and by resends, so both say the same thing.
//
// Activation queues the mail without its bytes (queuedIdMail): the outbox row
// names the contract, its recipients and a Message-ID, and OutboxRenderer
// renders it when deliver sends it. So the IDs live only in `contracts`, never
// at rest in the outbox, and activation writes each mail's few hundred bytes of
// row instead of ~12 KB through the WAL and again at the checkpoint.
#pragma once

#include "config/settings.h"
#include "domain/id_delivery.h"
#include "domain/model.h"
#include "domain/plans.h"
#include "mail/templates.h"
#include "store/database.h"
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
store::OutboxRow buildIdMail(const config::Settings& settings, const mail::TemplateSet& templates,
                             const domain::Partner& partner, const domain::Contract& contract,
                             const domain::Plan& plan, const domain::IdRecipients& recipients,
                             const Poco::Timestamp& now, const ResendRequest* resent = nullptr);

/// The outbox row of a contract's ID mail without its bytes (kind id_mail, a fresh
/// Message-ID, envelope from our address to the primary then the others): what
/// activation queues. Throws std::invalid_argument for a bad messageIdDomain.
store::OutboxRow queuedIdMail(const config::Settings& settings, const domain::Contract& contract,
                              const domain::IdRecipients& recipients);

/// Renders and composes a sample ID mail in every language templates/id_mail has
/// (English at least), so that a run which queues mails without bytes stops before
/// it writes anything when they could not be rendered at delivery. Throws
/// mail::TemplateError (or std::invalid_argument from the composer).
void checkIdMailRenders(const config::Settings& settings, const mail::TemplateSet& templates);

/// Raised by OutboxRenderer when a mail queued without bytes cannot be rendered
/// (its contract, partner or plan is gone, a template fails); the message says why.
class RenderError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The bytes an outbox row sends. Used by deliver and by the operator's `outbox`
/// tools on one thread (TemplateSet is not thread-safe); db, settings and
/// templates must outlive it.
class OutboxRenderer {
public:
    OutboxRenderer(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates)
        : db_(db), settings_(settings), templates_(templates) {}

    /// row.bytes when the row holds them. A row queued by queuedIdMail (kind
    /// id_mail, no bytes) is rendered from its contract, partner and plan, with
    /// the names and language the recipients' contact records have now, the row's
    /// Message-ID and created_at as the Date: the same bytes on every call (a
    /// retry) while those records are unchanged. Throws RenderError.
    std::string bytesOf(const store::OutboxRow& row) const;

private:
    store::Database& db_;
    const config::Settings& settings_;
    const mail::TemplateSet& templates_;
};

}  // namespace sm::jobs
