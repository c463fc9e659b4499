// process, one message: everything one inbound mail's handling needs, for the length
// of its savepoint. process.cpp claims a page of pending rows and hands each to a
// MessageHandler; each kind of mail has its own file beside this one (request,
// follow_up, resend, benefits, bounce, too_large), message_handler.cpp dispatches.
//
// Not safe from two threads; one handler per message. The references given to the
// constructor must outlive it. Errors from the store and the templates propagate as
// exceptions: process() rolls back that message's savepoint alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <Poco/Logger.h>
#include <Poco/String.h>
#include <Poco/Timestamp.h>

#include "config/settings.h"
#include "domain/requests.h"
#include "jobs/process.h"
#include "jobs/process/second_core.h"
#include "mail/classify.h"
#include "mail/parsed_mail.h"
#include "mail/request_fields.h"
#include "mail/templates.h"
#include "store/contracts.h"
#include "store/database.h"
#include "store/inbound.h"
#include "store/incidents.h"
#include "store/outbox.h"
#include "store/reference_data.h"

namespace sm::jobs::processing {

inline std::string lower(std::string s) { return Poco::toLower(s); }

inline std::string field(const mail::RequestFields& f, const std::string& key) {
    auto it = f.find(key);
    return it == f.end() ? std::string() : Poco::trim(it->second);
}

inline std::string digitsOnly(const std::string& s) {
    std::string out;
    for (char c : s)
        if (c >= '0' && c <= '9') out += c;
    return out;
}

/// PostgreSQL, a page without savepoints (process.cpp): the reads of the next
/// message's request (its pair's contract, balance lock and balance, its sender's
/// contacts and replies of the last hour) sent as soon as this message's balance
/// lock is held, before this message's writes, so that the server answers them while
/// this thread handles this message, and the next one finds them waiting: the server
/// and this thread work at once instead of by turns. Having run before this message's
/// writes, they miss only what those change of them: its debit (counted back in,
/// debited()); its answer waits in DeferredAnswers, which the reply limit counts
/// anyway, and a request writes nothing else they read. The next message uses them
/// only when it is the request they were sent for (its row, its sender, its pair);
/// otherwise they are dropped, a balance lock they took held to the page's end as any
/// other. Main thread only.
class ReadAhead {
public:
    /// One message's reads, sent.
    struct Reads {
        std::int64_t inboundId;
        std::string sender, accessId, contractId;
        std::unique_ptr<store::Contracts::PairReads> pair;
        store::CachedQuery contacts, replies;
        std::vector<std::int64_t> debitedAfter;  // contracts debited by writes sent after these reads
    };

    /// now: the run's time, as the handlers' (the reply limit's hour ends there).
    ReadAhead(store::Database& db, const Poco::Timestamp& now) : db_(db), now_(now), ref_(db), contracts_(db) {}

    /// process: the next message of the page, whose prepared mail `prepared` gives
    /// (waiting for the helper; nullptr when there is none: a mail judged by its
    /// headers alone), or none (id 0).
    void setNext(std::int64_t inboundId, std::function<const PreparedMail*()> prepared) {
        nextId_ = inboundId;
        nextPrepared_ = std::move(prepared);
    }
    /// This message's balance lock is held and it has written nothing yet: the next
    /// message's reads go now, when it looks like a request with a pair.
    void sendNext();
    /// This message debits contractRef, after the reads it sent ahead.
    void debited(std::int64_t contractRef) {
        if (sent_) sent_->debitedAfter.push_back(contractRef);
    }
    /// The reads sent for this message, when it is the request they were sent for.
    std::unique_ptr<Reads> take(std::int64_t inboundId, const std::string& sender, const std::string& accessId,
                                const std::string& contractId);
    /// Drops what was sent for messages up to this one (handled without them).
    void dropUpTo(std::int64_t inboundId);
    void dropAll() {
        sent_.reset();
        nextId_ = 0;
        nextPrepared_ = nullptr;
    }

private:
    store::Database& db_;
    Poco::Timestamp now_;
    store::ReferenceData ref_;
    store::Contracts contracts_;
    std::int64_t nextId_ = 0;
    std::function<const PreparedMail*()> nextPrepared_;
    std::unique_ptr<Reads> sent_;
};

/// The pair a request names, as handleRequest reads it (the digits as typed, the
/// Contract ID normalized); both empty when it names none.
std::pair<std::string, std::string> requestPair(const mail::RequestFields& fields);

class MessageHandler {
public:
    /// core and answers (optional, both or neither): a request's answer is rendered on
    /// the helper thread and queued in `answers` (the caller flushes it before its page
    /// commits); without them every answer is rendered here and inserted at once.
    MessageHandler(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                   Poco::Logger& log, const Poco::Timestamp& now, ProcessReport& report,
                   SecondCore* core = nullptr, DeferredAnswers* answers = nullptr)
        : db_(db), s_(settings), templates_(templates), log_(log), now_(now), report_(report), core_(core),
          answers_(answers), outbox_(db), inbound_(db), incidents_(db), contracts_(db), ref_(db) {}

    /// Handles one pending inbound row: classifies it, applies the rules of its kind,
    /// queues the answer and sets the row's end state (done, quarantined, duplicate,
    /// rejected), all on the caller's open transaction. prepared (optional): the row's
    /// prepareMail(), done ahead on the helper thread; parsed here otherwise.
    void handle(const store::InboundRow& row, PreparedMail* prepared = nullptr);

    /// How a request waits for its contract's balance lock (PostgreSQL), see
    /// store::LockWait. process() defers a message whose balance another worker holds
    /// (LockWait::Never) and waits only when it has nothing else to do.
    void setBalanceWait(store::LockWait wait) { balanceWait_ = wait; }
    /// PostgreSQL pages without savepoints: reads sent ahead of the next message and
    /// taken by it (ReadAhead).
    void setReadAhead(ReadAhead* ahead) { ahead_ = ahead; }

private:
    /// Before an outbox row other than a reply: the deferred answers first (order).
    void flushAnswers();
    bool isOurOwn() const;
    void finish(const std::string& state, const std::string& cls, const std::string& sender, const std::string& reason);
    /// Issue 10's short list of mail never answered (no backscatter): recorded with
    /// its outcome as the row's classification and a reason "unanswered: OUTCOME: why",
    /// which `status` counts per outcome, and logged at notice.
    void unanswered(const std::string& outcome, const std::string& why);
    /// Why this mail must not be answered whatever it says (spam flag, failed DMARC,
    /// empty return path), or "" with its outcome left empty.
    std::string mustNotAnswer(std::string& outcome) const;
    /// A mail by its content alone: a request, a resend, a balance query, an
    /// activation or the "no request found" answer.
    void handleByContent();
    /// DOMAIN.md: a person's mail in which we found nothing to act on gets the
    /// request template and what we did find.
    void handleNoRequest();
    bool rateLimited(const std::string& to);
    /// The contract a request's pair names, with its balance locked (balanceWait_). On
    /// PostgreSQL the sender's contacts and the sender's replies of the last hour, which
    /// every request's answer reads, are asked in the same round trip: one for the five
    /// reads, which were four round trips.
    std::optional<store::Contracts::WithLockedBalance> contractOfPair(const std::string& accessId,
                                                                      const std::string& contractId);
    /// The sender's contacts and replies of the hour, sent ahead (sendSenderReads in
    /// message_handler.cpp), read into senderContacts_ and repliesCounted_.
    void takeSenderReads(store::CachedQuery& contacts, store::CachedQuery& replies);
    /// Where an answer goes. OnRecord: the From address, the one a contract, a link or
    /// a case knows; a Reply-To (anyone can write one) never receives what an answer tells
    /// about a contract or a case. MayFollowReplyTo: answers that tell nothing of the kind.
    enum class To { OnRecord, MayFollowReplyTo };
    /// Queues a reply, threaded to the inbound mail. Returns its Message-ID,
    /// or "" when the rate limit held it back.
    std::string reply(const std::string& kind, const std::string& templateName, mail::TemplateData data,
                      const std::string& language, To to = To::OnRecord);
    /// The language of the sender if they are a known contact, else Vietnamese when the
    /// mail is written in Vietnamese, else English.
    std::string languageOf(const std::string& email);
    /// The contacts on record with the sender's address, read once per message.
    const std::vector<domain::Contact>& senderContacts();
    /// The mail's request text and fields (mail::readRequest), read once per message.
    const mail::RequestReading& reading();
    void tooLarge(const store::InboundRow& row);
    /// DOMAIN.md flows 4, 6, 7 may require the receiving server to vouch for the sender.
    /// Our MX vouched for the From (or process.require_authentication is off). When it
    /// did not, says so with what was not done (forWhat): never silent. At notice when the
    /// mail is refused for it; at information (`Consequence::Aside`) when only a side effect
    /// is left out of a mail that is answered (the link of an address that quoted both
    /// IDs): a site whose MX adds no Authentication-Results would otherwise see a notice,
    /// and a cron mail, for every ordinary request.
    enum class Consequence { Refused, Aside };
    bool authenticated(const std::string& forWhat, Consequence consequence = Consequence::Refused) const;
    int countSince(const std::string& column, const std::string& value, std::int64_t since);
    void recordResend(const std::string& partnerId, const std::string& outcome);
    /// DOMAIN.md flow 4: the IDs go to the primary on record (and, by the regional
    /// rule, to the asking contact in the benefit's country); the sender always gets
    /// the same neutral answer, so a stranger learns nothing.
    void handleResend();
    /// DOMAIN.md flow 2: an Action Pack benefit is activated when a known contact asks.
    void handleActivationRequest();
    /// DOMAIN.md flow 10: balance and cases of the contracts this address may see:
    /// the ones it is linked to, and all of its partner's for a primary contact.
    void handleBenefits();
    std::optional<store::OutboxRow> bouncedMail(std::string& matchedBy);
    /// A bounce marks a contact only when it is about mail we sent, to that address.
    void handleBounce(const mail::BounceInfo& bounce);
    std::optional<store::IncidentRow> threadIncident();
    void handleFollowUp();
    bool mayAddTo(const store::IncidentRow& inc);
    void refuse(domain::RequestOutcome outcome, const std::string& reason, mail::TemplateData d);
    void handleRequest();

    store::Database& db_;
    const config::Settings& s_;
    const mail::TemplateSet& templates_;
    Poco::Logger& log_;
    Poco::Timestamp now_;
    ProcessReport& report_;
    SecondCore* core_;
    DeferredAnswers* answers_;
    store::Outbox outbox_;
    store::Inbound inbound_;
    store::Incidents incidents_;
    store::Contracts contracts_;
    store::ReferenceData ref_;
    const store::InboundRow* row_ = nullptr;
    mail::ParsedMail mail_;
    std::string sender_, replyTo_;
    bool heldBack_ = false;  ///< an answer was held back by the rate limit
    store::LockWait balanceWait_ = store::LockWait::OnlyWhenHoldingNone;
    ReadAhead* ahead_ = nullptr;
    std::optional<std::vector<domain::Contact>> senderContacts_;
    /// Replies queued to an address in the last hour, read ahead (contractOfPair).
    struct RepliesCounted {
        std::string to;
        std::int64_t count;
    };
    std::optional<RepliesCounted> repliesCounted_;
    std::optional<mail::RequestReading> reading_;
};

}  // namespace sm::jobs::processing
