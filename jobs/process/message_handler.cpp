// process: dispatch and what every kind of mail shares: the end state of the inbound row, the
// threaded reply with its rate limit, the sender's language, authentication.
#include "jobs/process/message_handler.h"

#include "domain/authentication.h"
#include "domain/ids.h"
#include "jobs/outgoing.h"
#include "mail/compose.h"
#include "mail/mime_parser.h"
#include "mail/unicode_text.h"

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs::processing {

void MessageHandler::handle(const store::InboundRow& row, PreparedMail* prepared) {
    row_ = &row;
    if (row.reason.rfind("too_large:", 0) == 0) return tooLarge(row);
    PreparedMail here;
    if (!prepared) {
        here = prepareMail(row.raw);
        prepared = &here;
    }
    if (!prepared->parseFailure.empty()) return finish("quarantined", "", "", prepared->parseFailure);
    mail_ = std::move(prepared->mail);
    sender_ = lower(mail_.from.email);
    replyTo_ = mail_.replyTo.empty() ? sender_ : lower(mail_.replyTo);
    // The duplicate check came with the page on PostgreSQL (store::InboundRow::
    // earlierProcessed), when the Message-ID fetch stored is the one parsed here.
    std::optional<std::int64_t> earlier;
    if (row.earlierProcessed >= 0 && row.messageId == mail_.messageId && !mail_.messageId.empty()) {
        if (row.earlierProcessed > 0) earlier = row.earlierProcessed;
    } else {
        earlier = inbound_.processedWithMessageId(mail_.messageId, row.id);
    }
    if (earlier)
        return finish("duplicate", "", sender_, "Message-ID already processed as inbound #" + std::to_string(*earlier));

    if (prepared->classifyError) std::rethrow_exception(prepared->classifyError);
    reading_ = std::move(prepared->reading);
    mail::BounceInfo bounce = std::move(prepared->bounce);
    auto cls = prepared->hygiene;
    if (cls == mail::Classification::Bounce) return handleBounce(bounce);
    if (isOurOwn()) return unanswered("own_mail", "our own mail");
    if (cls == mail::Classification::AutoReply) return unanswered("auto_reply", "an auto-reply");
    if (cls == mail::Classification::Junk) return unanswered("list_mail", "list or bulk mail");
    std::string outcome;
    std::string why = mustNotAnswer(outcome);
    if (!why.empty()) return unanswered(outcome, why);
    if (cls == mail::Classification::FollowUp) return handleFollowUp();
    handleByContent();
}

void MessageHandler::handleByContent() {
    switch (mail::classifyContent(mail_, reading())) {
        case mail::Classification::Request: return handleRequest();
        case mail::Classification::Resend:
            if (threadIncident()) return handleFollowUp();
            if (mail::asksForActivation(mail_)) return handleActivationRequest();
            return handleResend();
        case mail::Classification::Benefits:
            if (threadIncident()) return handleFollowUp();
            if (mail::asksForActivation(mail_)) return handleActivationRequest();
            return handleBenefits();
        default:
            if (mail::asksForActivation(mail_)) return handleActivationRequest();
            return handleNoRequest();
    }
}

std::string MessageHandler::mustNotAnswer(std::string& outcome) const {
    if (mail_.hasReturnPath && mail_.returnPath.empty()) {
        outcome = "no_return_path";
        return "empty return path (<>)";
    }
    // Our MX's verdicts: SpamAssassin's X-Spam-Flag / X-Spam-Status, DMARC in Authentication-Results.
    if (const std::string* flag = mail_.header("X-Spam-Flag"))
        if (lower(Poco::trim(*flag)).rfind("yes", 0) == 0) {
            outcome = "spam";
            return "marked as spam by our MX (X-Spam-Flag: YES)";
        }
    if (const std::string* status = mail_.header("X-Spam-Status"))
        if (lower(Poco::trim(*status)).rfind("yes", 0) == 0) {
            outcome = "spam";
            return "marked as spam by our MX (X-Spam-Status: Yes)";
        }
    std::vector<std::string> results;
    for (const auto& [name, value] : mail_.headers)
        if (lower(name) == "authentication-results") results.push_back(value);
    if (domain::dmarcFailed(results, s_.process.authservId)) {
        outcome = "dmarc_fail";
        return "failed DMARC at our MX (Authentication-Results: dmarc=fail)";
    }
    return "";
}

bool MessageHandler::isOurOwn() const {
    if (sender_ == lower(s_.from.email)) return true;
    auto at = mail_.messageId.rfind('@');
    return at != std::string::npos && lower(mail_.messageId.substr(at + 1)) == lower(s_.messageIdDomain) + ">";
}

void MessageHandler::finish(const std::string& state, const std::string& cls, const std::string& sender,
                            const std::string& reason) {
    if (heldBack_ && state == "done") {
        // Handled, but the sender heard nothing: counted with the unanswered.
        inbound_.finishPipelined(row_->id, state, "rate_limited", sender, "unanswered: rate_limited: " + reason);
        ++report_.processed;
        return;
    }
    inbound_.finishPipelined(row_->id, state, cls, sender, reason);
    if (state == "quarantined") {
        ++report_.quarantined;
        log_.warning("inbound #" + std::to_string(row_->id) + " quarantined: " + reason);
    } else if (state == "duplicate") {
        ++report_.duplicates;
    }
    ++report_.processed;
}

void MessageHandler::unanswered(const std::string& outcome, const std::string& why) {
    ++report_.ignored;
    log_.notice("inbound #" + std::to_string(row_->id) + " from " + (sender_.empty() ? "(no sender)" : sender_) +
                " not answered: " + outcome + ": " + why);
    finish("done", outcome, sender_, "unanswered: " + outcome + ": " + why);
}

namespace {
// The literal pattern (not a bound one) is what lets the partial index
// outbox_reply_limit serve this count, from the index alone (migration 9).
// Bind the address (1) and the hour's start (2).
const char* const kRepliesInTheHour =
    "SELECT COUNT(*) FROM outbox WHERE recipients = ? AND created_at >= ? AND kind LIKE 'reply%'";

store::CachedQuery& bindRepliesInTheHour(store::CachedQuery& q, const std::string& to, const Poco::Timestamp& now) {
    return q.bind(1, to).bind(2, std::int64_t{now.epochTime() - 3600});
}

// The sender's contacts and replies of the hour, sent keeping their answers
// (contractOfPair, ReadAhead); MessageHandler::takeSenderReads reads them.
void sendSenderReads(store::CachedQuery& contacts, store::CachedQuery& replies, const std::string& sender,
                     const Poco::Timestamp& now) {
    contacts.bind(1, sender).sendKeepingAnswer();
    bindRepliesInTheHour(replies, sender, now).sendKeepingAnswer();
}
}  // namespace

bool MessageHandler::rateLimited(const std::string& to) {
    std::int64_t queued = 0;
    if (repliesCounted_ && repliesCounted_->to == to) {
        queued = repliesCounted_->count;  // read ahead; this message queued nothing since
    } else {
        auto q = db_.cached(kRepliesInTheHour);
        bindRepliesInTheHour(q, to, now_).step();
        queued = q.int64(0);
    }
    // Replies still rendering on the helper count as queued (they are, at commit).
    const std::int64_t deferred = answers_ ? answers_->pendingFor(to) : 0;
    return queued + deferred >= s_.process.repliesPerSenderPerHour;
}

std::pair<std::string, std::string> requestPair(const mail::RequestFields& fields) {
    return {mail::normalizeTypedDigits(field(fields, "access_id")),
            domain::normalizeContractId(field(fields, "contract_id"))};
}

void ReadAhead::sendNext() {
    sent_.reset();
    if (nextId_ == 0 || !nextPrepared_) return;
    const PreparedMail* next = nextPrepared_();
    if (!next || !next->parseFailure.empty() || next->classifyError ||
        next->hygiene != mail::Classification::Request)
        return;
    auto [accessId, contractId] = requestPair(next->reading.fields);
    if (accessId.empty() && contractId.empty()) return;
    std::unique_ptr<Reads> reads(new Reads{nextId_, lower(next->mail.from.email), std::move(accessId),
                                           std::move(contractId), nullptr, ref_.contactsByEmailQuery(1),
                                           db_.cached(kRepliesInTheHour, 1), {}});
    sendSenderReads(reads->contacts, reads->replies, reads->sender, now_);
    reads->pair = contracts_.sendPair(reads->accessId, reads->contractId, 1);
    // It may hold that balance's lock from now on, used or not: no later lock of this
    // page waits for another worker (LockWait::OnlyWhenHoldingNone) while it does.
    db_.noteBalanceLock();
    // Its answers come back as soon as the server has run it, whatever is sent after.
    db_.syncSent();
    sent_ = std::move(reads);
}

std::unique_ptr<ReadAhead::Reads> ReadAhead::take(std::int64_t inboundId, const std::string& sender,
                                                  const std::string& accessId, const std::string& contractId) {
    if (!sent_ || sent_->inboundId != inboundId || sent_->sender != sender || sent_->accessId != accessId ||
        sent_->contractId != contractId)
        return nullptr;
    db_.collectSynced();  // nothing to wait for when a round trip since brought them
    return std::move(sent_);
}

void ReadAhead::dropUpTo(std::int64_t inboundId) {
    if (sent_ && sent_->inboundId <= inboundId) sent_.reset();
}

std::optional<store::Contracts::WithLockedBalance> MessageHandler::contractOfPair(const std::string& accessId,
                                                                                  const std::string& contractId) {
    if (db_.dialect() != store::Dialect::PostgreSQL || senderContacts_)
        return contracts_.byPairWithLockedBalance(accessId, contractId, balanceWait_);
    // Sent ahead by the message before (a lock that never waits: only when this one
    // must not wait either).
    if (ahead_ && balanceWait_ == store::LockWait::Never)
        if (auto reads = ahead_->take(row_->id, sender_, accessId, contractId)) {
            takeSenderReads(reads->contacts, reads->replies);
            auto found = contracts_.readPair(*reads->pair);  // BalanceBusy as below
            if (found)
                for (std::int64_t debited : reads->debitedAfter) found->balance -= debited == found->contract.id;
            return found;
        }
    auto contacts = ref_.contactsByEmailQuery();
    auto replies = db_.cached(kRepliesInTheHour);
    sendSenderReads(contacts, replies, sender_, now_);
    // The answers of all five come back with the contract's; BalanceBusy drops them.
    auto found = contracts_.byPairWithLockedBalance(accessId, contractId, balanceWait_);
    takeSenderReads(contacts, replies);
    return found;
}

void MessageHandler::takeSenderReads(store::CachedQuery& contacts, store::CachedQuery& replies) {
    senderContacts_ = store::ReferenceData::readContacts(contacts);
    replies.step();
    repliesCounted_ = RepliesCounted{sender_, replies.int64(0)};
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
        heldBack_ = true;
        log_.notice("reply to " + recipient + " held back: more than " +
                    std::to_string(s_.process.repliesPerSenderPerHour) + " replies in the last hour");
        return "";
    }
    // An empty string is "true" in a Mustache section: no name must be false.
    if (mail_.from.name.empty()) data.set("contact_name", false);
    else data.set("contact_name", mail_.from.name);
    data.set("support_address", s_.supportAddress);
    data.set("original_subject", mail_.subject);
    // Everything of the answer but its rendering, here: what compose would refuse
    // (an address, the Message-ID domain) is refused before anything is written.
    mail::OutgoingMessage msg;
    msg.to.push_back({mail_.from.name, recipient});
    msg.inReplyTo = mail_.messageId;
    msg.references = mail_.references;
    if (!mail_.messageId.empty()) msg.references.push_back(mail_.messageId);
    msg.autoSubmitted = "auto-replied";
    try {
        mail::validateEmail(recipient);
        mail::validateEmail(s_.from.email);
        msg.messageId = mail::newMessageId(s_.messageIdDomain);
    } catch (const std::invalid_argument& e) {
        log_.warning("inbound #" + std::to_string(row_->id) + ": cannot answer " + recipient + ": " + e.what());
        return "";
    }
    const std::string messageId = msg.messageId;
    // Rendered and composed (a third of a request's time) on the helper thread while
    // this one writes the rest of the message and the next (DeferredAnswers).
    // By value but the settings (they outlive the run): a task may outlive this handler
    // when the message's handling throws.
    auto render = [&settings = s_, at = now_, templateName, language, data = std::move(data), msg = std::move(msg),
                   kind = "reply:" + kind](const mail::TemplateSet& templates) mutable {
        auto rendered = templates.render(templateName, language, data);
        auto full = messageFrom(settings, rendered, at);
        full.to = std::move(msg.to);
        full.inReplyTo = std::move(msg.inReplyTo);
        full.references = std::move(msg.references);
        full.autoSubmitted = std::move(msg.autoSubmitted);
        full.messageId = std::move(msg.messageId);
        return queuedRow(settings, full, kind);
    };
    if (core_ && answers_) {
        answers_->add(row_->id, recipient, core_->run([render = std::move(render), core = core_]() mutable {
            return render(core->templates());
        }));
    } else {
        outbox_.enqueuePipelined(render(templates_));
    }
    return messageId;
}

void MessageHandler::flushAnswers() {
    if (answers_) answers_->flush();
}

/// The language of the sender if they are a known contact, else Vietnamese when the
/// mail is written in Vietnamese, else English.
std::string MessageHandler::languageOf(const std::string& email) {
    for (const auto& c : email == sender_ ? senderContacts() : ref_.contactsByEmail(email))
        if (!c.language.empty()) return c.language;
    return mail::looksVietnamese(mail_.subject + "\n" + mail_.text) ? "vi" : "en";
}

const std::vector<domain::Contact>& MessageHandler::senderContacts() {
    if (!senderContacts_) senderContacts_ = ref_.contactsByEmail(sender_);
    return *senderContacts_;
}

const mail::RequestReading& MessageHandler::reading() {
    if (!reading_) reading_ = mail::readRequest(mail_);
    return *reading_;
}

/// DOMAIN.md flows 4, 6, 7 may require the receiving server to vouch for the sender.
bool MessageHandler::authenticated(const std::string& forWhat, Consequence consequence) const {
    if (!s_.process.requireAuthentication) return true;
    std::vector<std::string> results;
    for (const auto& [name, value] : mail_.headers)
        if (lower(name) == "authentication-results") results.push_back(value);
    auto at = sender_.rfind('@');
    const bool vouched = at != std::string::npos &&
                         domain::senderAuthenticated(results, sender_.substr(at + 1), s_.process.authservId);
    if (!vouched) {
        const std::string what = "inbound #" + std::to_string(row_->id) + " from " + sender_ +
                                 ": our MX's Authentication-Results do not vouch for the sender (no DMARC pass, "
                                 "no aligned SPF or DKIM pass): " + forWhat + " (process.require_authentication)";
        if (consequence == Consequence::Refused) log_.notice(what);
        else log_.information(what);
    }
    return vouched;
}

}  // namespace sm::jobs::processing
