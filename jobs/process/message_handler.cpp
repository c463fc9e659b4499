// process: dispatch and what every kind of mail shares: the end state of the inbound row, the
// threaded reply with its rate limit, the sender's language, authentication.
#include "jobs/process/message_handler.h"

#include "domain/authentication.h"
#include "jobs/outgoing.h"
#include "mail/compose.h"
#include "mail/mime_parser.h"

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs::processing {

void MessageHandler::handle(const store::InboundRow& row) {
    row_ = &row;
    if (row.reason.rfind("too_large:", 0) == 0) return tooLarge(row);
    try {
        // Hostile shapes (too deep, too many parts, monstrous headers) are quarantined,
        // not cut: an operator should look at them.
        mail::ParseLimits limits;
        limits.rejectHostile = true;
        mail_ = mail::parseMail(row.raw, limits);
    } catch (const mail::MailRejected& e) {
        return finish("quarantined", "", "", std::string("unparseable: ") + e.what());
    } catch (const std::exception& e) {
        return finish("quarantined", "", "", std::string("parser failed: ") + e.what());
    }
    sender_ = lower(mail_.from.email);
    replyTo_ = mail_.replyTo.empty() ? sender_ : lower(mail_.replyTo);
    if (auto earlier = inbound_.processedWithMessageId(mail_.messageId, row.id))
        return finish("duplicate", "", sender_, "Message-ID already processed as inbound #" + std::to_string(*earlier));

    mail::BounceInfo bounce;
    auto cls = mail::classifyHygiene(mail_, &bounce);
    const std::string clsName = mail::toString(cls);
    if (cls != mail::Classification::Bounce && isOurOwn())
        return ignore(clsName, "our own mail");
    switch (cls) {
        case mail::Classification::Bounce: return handleBounce(bounce);
        case mail::Classification::AutoReply: return ignore(clsName, "auto-reply: never answered");
        case mail::Classification::Junk:
            if (!isListMail() && asksForActivation()) return handleActivationRequest();
            return ignore(clsName, "junk or list mail: never answered");
        case mail::Classification::FollowUp: return handleFollowUp();
        case mail::Classification::Request: return handleRequest();
        case mail::Classification::Resend:
            if (threadIncident()) return handleFollowUp();
            if (asksForActivation()) return handleActivationRequest();
            return handleResend();
        case mail::Classification::Benefits:
            if (threadIncident()) return handleFollowUp();
            if (asksForActivation()) return handleActivationRequest();
            return handleBenefits();
    }
}

bool MessageHandler::isOurOwn() const {
    if (sender_ == lower(s_.from.email)) return true;
    auto at = mail_.messageId.rfind('@');
    return at != std::string::npos && lower(mail_.messageId.substr(at + 1)) == lower(s_.messageIdDomain) + ">";
}

bool MessageHandler::isListMail() const {
    if (mail_.header("List-Id") || mail_.header("List-Unsubscribe")) return true;
    if (const std::string* prec = mail_.header("Precedence")) {
        std::string p = lower(*prec);
        return p.find("bulk") != std::string::npos || p.find("list") != std::string::npos ||
               p.find("junk") != std::string::npos;
    }
    return false;
}

void MessageHandler::finish(const std::string& state, const std::string& cls, const std::string& sender,
                            const std::string& reason) {
    inbound_.finish(row_->id, state, cls, sender, reason);
    if (state == "quarantined") {
        ++report_.quarantined;
        log_.warning("inbound #" + std::to_string(row_->id) + " quarantined: " + reason);
    } else if (state == "duplicate") {
        ++report_.duplicates;
    }
    ++report_.processed;
}

void MessageHandler::ignore(const std::string& cls, const std::string& why) {
    ++report_.ignored;
    finish("done", cls, sender_, why);
}

bool MessageHandler::rateLimited(const std::string& to) {
    int n = 0;
    std::string r = to;
    std::int64_t since = now_.epochTime() - 3600;
    db_.session() << db_.sql("SELECT COUNT(*) FROM outbox WHERE recipients = ? AND created_at >= ? AND kind LIKE 'reply%'"),
        use(r), use(since), into(n), now;
    return n >= s_.process.repliesPerSenderPerHour;
}

/// Queues a reply, threaded to the inbound mail. Returns its Message-ID,
/// or "" when the rate limit held it back.
std::string MessageHandler::reply(const std::string& kind, const std::string& templateName, mail::TemplateData data,
                                  const std::string& language, To to) {
    const std::string recipient = to == To::OnRecord ? sender_ : replyTo_;
    if (recipient.empty()) return "";
    if (to == To::OnRecord && replyTo_ != sender_)
        log_.information("inbound #" + std::to_string(row_->id) + ": answer '" + kind + "' goes to " + sender_ +
                         ", the address on record, not to its Reply-To " + replyTo_);
    if (rateLimited(recipient)) {
        ++report_.rateLimited;
        log_.notice("reply to " + recipient + " held back: more than " +
                    std::to_string(s_.process.repliesPerSenderPerHour) + " replies in the last hour");
        return "";
    }
    // An empty string is "true" in a Mustache section: no name must be false.
    if (mail_.from.name.empty()) data.set("contact_name", false);
    else data.set("contact_name", mail_.from.name);
    data.set("support_address", s_.supportAddress);
    data.set("original_subject", mail_.subject);
    auto rendered = templates_.render(templateName, language, data);
    auto msg = messageFrom(s_, rendered, now_);
    msg.to.push_back({mail_.from.name, recipient});
    msg.inReplyTo = mail_.messageId;
    msg.references = mail_.references;
    if (!mail_.messageId.empty()) msg.references.push_back(mail_.messageId);
    msg.autoSubmitted = "auto-replied";
    store::OutboxRow out;
    try {
        out = queuedRow(s_, msg, "reply:" + kind);
    } catch (const std::invalid_argument& e) {
        log_.warning("inbound #" + std::to_string(row_->id) + ": cannot answer " + recipient + ": " + e.what());
        return "";
    }
    outbox_.enqueue(out);
    return out.messageId;
}

/// The language of the sender if they are a known contact, else English.
std::string MessageHandler::languageOf(const std::string& email) {
    for (const auto& c : ref_.contactsByEmail(email))
        if (!c.language.empty()) return c.language;
    return "en";
}

/// DOMAIN.md flows 4, 6, 7 may require the receiving server to vouch for the sender.
bool MessageHandler::authenticated() const {
    if (!s_.process.requireAuthentication) return true;
    std::vector<std::string> results;
    for (const auto& [name, value] : mail_.headers)
        if (lower(name) == "authentication-results") results.push_back(value);
    auto at = sender_.rfind('@');
    return at != std::string::npos &&
           domain::senderAuthenticated(results, sender_.substr(at + 1), s_.process.authservId);
}

}  // namespace sm::jobs::processing
