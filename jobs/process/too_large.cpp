// process: a mail over process.max_message_bytes: stored with its header only; its sender is told
// (unless it is list mail, an auto-reply, a bounce or our own).
#include "jobs/process/message_handler.h"

#include "mail/mime_parser.h"

namespace sm::jobs::processing {

void MessageHandler::tooLarge(const store::InboundRow& row) {
    try {
        mail_ = mail::parseMail(row.raw);
    } catch (const std::exception&) {
        mail_ = {};
    }
    sender_ = lower(mail_.from.email);
    replyTo_ = mail_.replyTo.empty() ? sender_ : lower(mail_.replyTo);
    // Only the headers are here: judge by hygiene alone (the body's words are unknown).
    auto cls = mail::classifyHygiene(mail_, nullptr);
    if (!sender_.empty() && !isOurOwn() && !mail::isListMail(mail_) && cls != mail::Classification::AutoReply &&
        cls != mail::Classification::Bounce) {
        mail::TemplateData d;
        d.set("limit_mb", std::to_string(s_.process.maxMessageBytes / (1024 * 1024)));
        reply("too_large", "mail_too_large", d, languageOf(sender_), To::MayFollowReplyTo);
    }
    finish("rejected", "", sender_, "larger than process.max_message_bytes (" + row.reason.substr(10) + " bytes)");
}

}  // namespace sm::jobs::processing
