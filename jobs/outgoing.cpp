#include "jobs/outgoing.h"

namespace sm::jobs {

mail::OutgoingMessage messageFrom(const app::Settings& settings, const mail::RenderedMail& rendered,
                                  const Poco::Timestamp& now) {
    mail::OutgoingMessage msg;
    msg.from = settings.from;
    msg.subject = rendered.subject;
    msg.text = rendered.text;
    msg.html = rendered.html;
    msg.messageIdDomain = settings.messageIdDomain;
    msg.date = now;
    return msg;
}

store::OutboxRow queuedRow(const app::Settings& settings, const mail::OutgoingMessage& msg, const std::string& kind,
                           std::int64_t contractRef) {
    auto composed = mail::compose(msg);
    store::OutboxRow row;
    row.messageId = composed.messageId;
    row.kind = kind;
    row.envelopeFrom = settings.from.email;
    for (const auto& a : msg.to) row.recipients.push_back(a.email);
    for (const auto& a : msg.cc) row.recipients.push_back(a.email);
    row.bytes = std::move(composed.bytes);
    row.contractRef = contractRef;
    return row;
}

}  // namespace sm::jobs
