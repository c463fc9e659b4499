// A templated mail from us and the outbox row that queues it: what the ID mail,
// the replies, the administrators' bounce notice, the expiry reminder and the
// closure notice all build.
#pragma once

#include <cstdint>
#include <string>

#include <Poco/Timestamp.h>

#include "config/settings.h"
#include "mail/compose.h"
#include "mail/templates.h"
#include "store/outbox.h"

namespace sm::jobs {

/// Our From, the rendered subject, text and HTML, the Message-ID domain and the
/// date. The caller adds To and Cc, threading and Auto-Submitted.
mail::OutgoingMessage messageFrom(const config::Settings& settings, const mail::RenderedMail& rendered,
                                  const Poco::Timestamp& now);

/// Composes msg and returns the row that queues it: envelope from our address to
/// msg's To and Cc addresses. Throws std::invalid_argument as mail::compose does.
store::OutboxRow queuedRow(const config::Settings& settings, const mail::OutgoingMessage& msg, const std::string& kind,
                           std::int64_t contractRef = 0);

/// VERP: bounces@example.com and outbox row 42 make bounces+42@example.com.
std::string verpReturnPath(const std::string& bounceAddress, std::int64_t outboxId);

/// The outbox id a VERP address names (bounces+42@example.com → 42), or 0 when the
/// address is not one of ours.
std::int64_t outboxIdOfReturnPath(const std::string& bounceAddress, const std::string& address);

}  // namespace sm::jobs
