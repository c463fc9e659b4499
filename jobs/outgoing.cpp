#include "jobs/outgoing.h"

#include <Poco/String.h>

namespace sm::jobs {

mail::OutgoingMessage messageFrom(const config::Settings& settings, const mail::RenderedMail& rendered,
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

store::OutboxRow queuedRow(const config::Settings& settings, const mail::OutgoingMessage& msg, const std::string& kind,
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

std::string verpReturnPath(const std::string& bounceAddress, std::int64_t outboxId) {
    auto at = bounceAddress.rfind('@');
    return bounceAddress.substr(0, at) + "+" + std::to_string(outboxId) + bounceAddress.substr(at);
}

std::int64_t outboxIdOfReturnPath(const std::string& bounceAddress, const std::string& address) {
    auto at = bounceAddress.rfind('@');
    if (bounceAddress.empty() || at == std::string::npos) return 0;
    const std::string local = Poco::toLower(bounceAddress.substr(0, at)) + "+",
                      domain = Poco::toLower(bounceAddress.substr(at));
    std::string a = Poco::toLower(Poco::trim(address));
    if (a.size() <= local.size() + domain.size() || a.compare(0, local.size(), local) != 0 ||
        a.compare(a.size() - domain.size(), domain.size(), domain) != 0)
        return 0;
    std::string digits = a.substr(local.size(), a.size() - local.size() - domain.size());
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoll(digits);
}

}  // namespace sm::jobs
