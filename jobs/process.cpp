#include "jobs/process.h"
#include "jobs/outgoing.h"

#include <algorithm>
#include <set>

#include <Poco/DateTimeFormatter.h>
#include <Poco/String.h>

#include "domain/authentication.h"
#include "domain/dates.h"
#include "domain/id_delivery.h"
#include "domain/secure_random.h"
#include "domain/ids.h"
#include "domain/requests.h"
#include "jobs/activate.h"
#include "jobs/crash_point.h"
#include "jobs/id_mail.h"
#include "mail/classify.h"
#include "mail/compose.h"
#include "mail/mime_parser.h"
#include "mail/request_fields.h"
#include "store/contracts.h"
#include "store/inbound.h"
#include "store/incidents.h"
#include "store/outbox.h"
#include "store/reference_data.h"
#include "store/renewals.h"

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs {
namespace {

std::string lower(std::string s) { return Poco::toLower(s); }

std::string field(const mail::RequestFields& f, const std::string& key) {
    auto it = f.find(key);
    return it == f.end() ? std::string() : Poco::trim(it->second);
}

std::string digitsOnly(const std::string& s) {
    std::string out;
    for (char c : s)
        if (c >= '0' && c <= '9') out += c;
    return out;
}

/// Everything one message's handling needs, for the length of its transaction.
class MessageHandler {
public:
    MessageHandler(store::Database& db, const app::Settings& settings, const mail::TemplateSet& templates,
                   Poco::Logger& log, const Poco::Timestamp& now, ProcessReport& report)
        : db_(db), s_(settings), templates_(templates), log_(log), now_(now), report_(report), outbox_(db),
          inbound_(db), incidents_(db), contracts_(db), ref_(db) {}

    void handle(const store::InboundRow& row) {
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

private:
    bool isOurOwn() const {
        if (sender_ == lower(s_.from.email)) return true;
        auto at = mail_.messageId.rfind('@');
        return at != std::string::npos && lower(mail_.messageId.substr(at + 1)) == lower(s_.messageIdDomain) + ">";
    }

    void finish(const std::string& state, const std::string& cls, const std::string& sender, const std::string& reason) {
        inbound_.finish(row_->id, state, cls, sender, reason);
        if (state == "quarantined") {
            ++report_.quarantined;
            log_.warning("inbound #" + std::to_string(row_->id) + " quarantined: " + reason);
        } else if (state == "duplicate") {
            ++report_.duplicates;
        }
        ++report_.processed;
    }

    void ignore(const std::string& cls, const std::string& why) {
        ++report_.ignored;
        finish("done", cls, sender_, why);
    }

    bool rateLimited(const std::string& to) {
        int n = 0;
        std::string r = to;
        std::int64_t since = now_.epochTime() - 3600;
        db_.session() << db_.sql("SELECT COUNT(*) FROM outbox WHERE recipients = ? AND created_at >= ? AND kind LIKE 'reply%'"),
            use(r), use(since), into(n), now;
        return n >= s_.process.repliesPerSenderPerHour;
    }

    /// Queues a reply to the sender, threaded to the inbound mail. Returns its Message-ID,
    /// or "" when the rate limit held it back.
    std::string reply(const std::string& kind, const std::string& templateName, mail::TemplateData data,
                      const std::string& language) {
        if (replyTo_.empty()) return "";
        if (rateLimited(replyTo_)) {
            ++report_.rateLimited;
            log_.notice("reply to " + replyTo_ + " held back: more than " +
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
        msg.to.push_back({mail_.from.name, replyTo_});
        msg.inReplyTo = mail_.messageId;
        msg.references = mail_.references;
        if (!mail_.messageId.empty()) msg.references.push_back(mail_.messageId);
        msg.autoSubmitted = "auto-replied";
        store::OutboxRow out;
        try {
            out = queuedRow(s_, msg, "reply:" + kind);
        } catch (const std::invalid_argument& e) {
            log_.warning("inbound #" + std::to_string(row_->id) + ": cannot answer " + replyTo_ + ": " + e.what());
            return "";
        }
        outbox_.enqueue(out);
        return out.messageId;
    }

    /// The language of the sender if they are a known contact, else English.
    std::string languageOf(const std::string& email) {
        for (const auto& c : ref_.contactsByEmail(email))
            if (!c.language.empty()) return c.language;
        return "en";
    }

    void tooLarge(const store::InboundRow& row) {
        try {
            mail_ = mail::parseMail(row.raw);
        } catch (const std::exception&) {
            mail_ = {};
        }
        sender_ = lower(mail_.from.email);
        replyTo_ = mail_.replyTo.empty() ? sender_ : lower(mail_.replyTo);
        // Only the headers are here: judge by hygiene alone (the body's words are unknown).
        auto cls = mail::classifyHygiene(mail_, nullptr);
        bool listMail = mail_.header("List-Id") || mail_.header("List-Unsubscribe");
        if (const std::string* prec = mail_.header("Precedence")) {
            std::string p = lower(*prec);
            listMail = listMail || p.find("bulk") != std::string::npos || p.find("list") != std::string::npos ||
                       p.find("junk") != std::string::npos;
        }
        if (!sender_.empty() && !isOurOwn() && !listMail && cls != mail::Classification::AutoReply &&
            cls != mail::Classification::Bounce) {
            mail::TemplateData d;
            d.set("limit_mb", std::to_string(s_.process.maxMessageBytes / (1024 * 1024)));
            reply("too_large", "mail_too_large", d, languageOf(sender_));
        }
        finish("rejected", "", sender_, "larger than process.max_message_bytes (" + row.reason.substr(10) + " bytes)");
    }

    bool isListMail() const {
        if (mail_.header("List-Id") || mail_.header("List-Unsubscribe")) return true;
        if (const std::string* prec = mail_.header("Precedence")) {
            std::string p = lower(*prec);
            return p.find("bulk") != std::string::npos || p.find("list") != std::string::npos ||
                   p.find("junk") != std::string::npos;
        }
        return false;
    }

    /// DOMAIN.md flows 4, 6, 7 may require the receiving server to vouch for the sender.
    bool authenticated() const {
        if (!s_.process.requireAuthentication) return true;
        std::vector<std::string> results;
        for (const auto& [name, value] : mail_.headers)
            if (lower(name) == "authentication-results") results.push_back(value);
        auto at = sender_.rfind('@');
        return at != std::string::npos &&
               domain::senderAuthenticated(results, sender_.substr(at + 1), s_.process.authservId);
    }

    /// An Action Pack partner's contact asking for the benefit to be activated.
    bool asksForActivation() const {
        static const char* const words[] = {"activate", "activation", "kích hoạt"};
        std::string hay = lower(mail_.subject + "\n" + mail_.text);
        for (const char* w : words)
            if (hay.find(w) != std::string::npos) return true;
        return false;
    }

    int countSince(const std::string& column, const std::string& value, std::int64_t since) {
        int n = 0;
        std::string v = value;
        db_.session() << db_.sql("SELECT COUNT(*) FROM resends WHERE " + column + " = ? AND created_at >= ?"), use(v),
            use(since), into(n), now;
        return n;
    }

    void recordResend(const std::string& partnerId, const std::string& outcome) {
        std::string p = partnerId, snd = sender_, o = outcome;
        std::int64_t in = row_->id, at = now_.epochTime();
        db_.session() << db_.sql("INSERT INTO resends (partner_id, sender, inbound_ref, outcome, created_at) "
                                 "VALUES (?, ?, ?, ?, ?)"),
            use(p), use(snd), use(in), use(o), use(at), now;
    }

    /// DOMAIN.md flow 4: the IDs go to the primary on record (and, by the regional
    /// rule, to the asking contact in the benefit's country); the sender always gets
    /// the same neutral answer, so a stranger learns nothing.
    void handleResend() {
        const std::int64_t since = now_.epochTime() - 86400;
        std::string outcome;
        int sent = 0;
        if (countSince("sender", sender_, since) >= s_.process.resendsPerSenderPerDay) {
            recordResend("", "rate_limited_sender");
            log_.notice("resend request from " + sender_ + " not answered: sender limit reached");
            return finish("done", "resend", sender_, "resend: sender over its daily limit, not answered");
        }
        auto contacts = ref_.contactsByEmail(sender_);
        if (contacts.empty() || !authenticated()) {
            recordResend("", contacts.empty() ? "unknown_sender" : "not_authenticated");
            outcome = contacts.empty() ? "unknown sender" : "sender not authenticated";
        } else {
            // A partner ID named in the mail narrows it to that partner.
            std::set<std::string> named;
            std::string hay = mail_.subject + " " + mail_.text;
            for (const auto& c : contacts)
                if (hay.find(c.partnerId) != std::string::npos) named.insert(c.partnerId);
            domain::IdDeliveryPolicy policy{s_.activation.regionalRule, &s_.regions};
            for (const auto& asking : contacts) {
                if (!named.empty() && !named.count(asking.partnerId)) continue;
                if (countSince("partner_id", asking.partnerId, since) >= s_.process.resendsPerPartnerPerDay) {
                    recordResend(asking.partnerId, "rate_limited_partner");
                    continue;
                }
                auto partner = ref_.partner(asking.partnerId);
                if (!partner) continue;
                auto all = ref_.contactsOf(asking.partnerId);
                int forPartner = 0;
                for (const auto& c : contracts_.ofPartner(asking.partnerId)) {
                    if (c.state != domain::ContractState::Active) continue;
                    const domain::Plan* plan = s_.plans.byKey(c.planKey);
                    if (!plan) continue;
                    std::optional<domain::Location> loc;
                    if (!c.locationId.empty()) loc = ref_.location(c.locationId);
                    // The primary only; the asking contact too where the regional rule allows it.
                    auto r = domain::idRecipients(*partner, loc ? &*loc : nullptr, all,
                                                  domain::IdDeliveryPolicy{false, &s_.regions});
                    if (!r.primary) continue;
                    auto widened = domain::idRecipients(*partner, loc ? &*loc : nullptr, all, policy);
                    for (const auto* o : widened.others)
                        if (o->email == asking.email) r.others.push_back(o);
                    outbox_.enqueue(buildIdMail(s_, templates_, *partner, c, *plan, r, now_));
                    ++forPartner;
                }
                recordResend(asking.partnerId, forPartner ? "sent" : "no_active_contract");
                sent += forPartner;
            }
            outcome = std::to_string(sent) + " ID mails queued";
        }
        mail::TemplateData d;
        reply("resend_ack", "resend_ack", d, languageOf(sender_));
        log_.information("resend request inbound #" + std::to_string(row_->id) + " from " + sender_ + ": " + outcome);
        finish("done", "resend", sender_, "resend: " + outcome);
    }

    /// DOMAIN.md flow 2: an Action Pack benefit is activated when a known contact asks.
    void handleActivationRequest() {
        std::vector<std::string> partners;
        if (authenticated())
            for (const auto& c : ref_.contactsByEmail(sender_)) {
                auto p = ref_.partner(c.partnerId);
                if (p && p->membership == domain::Membership::ActionPack) partners.push_back(c.partnerId);
            }
        int activated = 0;
        for (const auto& pid : partners) {
            ActivationOptions opts;
            opts.partnerId = pid;
            opts.onlyBenefit = domain::Benefit::ActionPack;
            opts.ownTransactions = false;
            domain::SystemRandom random;
            auto report = activate(db_, s_, templates_, random, opts, log_, now_);
            activated += report.activated;
        }
        // The same neutral answer as a resend: the IDs themselves go to the primary contact.
        mail::TemplateData d;
        reply("resend_ack", "resend_ack", d, languageOf(sender_));
        finish("done", "resend", sender_, "action pack request: " + std::to_string(activated) + " activated");
    }

    /// DOMAIN.md flow 10: balance and cases of the contracts this address may see:
    /// the ones it is linked to, and all of its partner's for a primary contact.
    void handleBenefits() {
        std::set<std::int64_t> ids;
        if (authenticated()) {
            for (auto id : incidents_.linkedContracts(sender_)) ids.insert(id);
            for (const auto& c : ref_.contactsByEmail(sender_))
                if (c.role != domain::ContactRole::Member)
                    for (const auto& k : contracts_.ofPartner(c.partnerId))
                        if (c.role == domain::ContactRole::HqPrimary || k.locationId == c.locationId) ids.insert(k.id);
        }
        kainjow::mustache::data list{kainjow::mustache::data::type::list};
        for (auto id : ids) {
            auto c = contracts_.byId(id);
            if (!c) continue;
            kainjow::mustache::data item;
            item.set("display_name", c->displayName);
            item.set("state", domain::toString(c->state));
            item.set("expires_on", c->expiresOn);
            item.set("incidents_left", std::to_string(contracts_.balance(c->id)));
            item.set("hours", std::to_string(c->hoursGranted));
            int open = 0, closed = 0;
            std::int64_t ref = c->id;
            db_.session() << db_.sql("SELECT COALESCE(SUM(CASE WHEN state = 'open' THEN 1 ELSE 0 END), 0), "
                                     "COALESCE(SUM(CASE WHEN state = 'closed' THEN 1 ELSE 0 END), 0) "
                                     "FROM incidents WHERE contract_ref = ?"),
                use(ref), into(open), into(closed), now;
            item.set("open_cases", std::to_string(open));
            item.set("closed_cases", std::to_string(closed));
            std::vector<std::string> openNumbers;
            db_.session() << db_.sql("SELECT case_number FROM incidents WHERE contract_ref = ? AND state = 'open' "
                                     "ORDER BY id"),
                use(ref), into(openNumbers), now;
            std::string joined;
            for (const auto& n : openNumbers) joined += (joined.empty() ? "" : ", ") + n;
            if (joined.empty()) item.set("open_case_numbers", false);
            else item.set("open_case_numbers", joined);
            list.push_back(item);
        }
        mail::TemplateData d;
        d.set("contracts", list);
        d.set("has_contracts", !ids.empty());
        reply("benefits", "benefits", d, languageOf(sender_));
        finish("done", "benefits", sender_, "benefits: " + std::to_string(ids.size()) + " contracts listed");
    }

    void handleBounce(const mail::BounceInfo& bounce) {
        ++report_.bounces;
        std::set<std::string> partners;
        for (const auto& addr : bounce.recipients) {
            auto contacts = ref_.contactsByEmail(lower(addr));
            if (contacts.empty() || !bounce.permanent) continue;
            ref_.setAddressState(lower(addr), domain::AddressState::Bouncing);
            for (const auto& c : contacts) partners.insert(c.partnerId);
            if (!s_.adminAddress.empty()) {
                mail::TemplateData d;
                d.set("address", addr);
                d.set("permanent", bounce.permanent);
                std::string diag;
                for (const auto& ds : mail_.deliveryStatus)
                    if (lower(ds.finalRecipient) == lower(addr)) diag = ds.status + " " + ds.diagnosticCode;
                d.set("diagnostic", diag);
                std::string list;
                for (const auto& c : contacts) list += (list.empty() ? "" : ", ") + c.partnerId;
                d.set("partners", list);
                d.set("original_subject", mail_.subject);
                d.set("contact_name", false);
                d.set("support_address", s_.supportAddress);
                auto rendered = templates_.render("admin_bounce", "en", d);
                auto msg = messageFrom(s_, rendered, now_);
                msg.to.push_back({"", s_.adminAddress});
                outbox_.enqueue(queuedRow(s_, msg, "admin_bounce"));
            }
            log_.warning("bounce: " + addr + " marked bouncing");
        }
        std::string why = bounce.recipients.empty() ? "bounce without a recipient we know" : "bounce";
        finish("done", "bounce", sender_, why);
    }

    std::optional<store::IncidentRow> threadIncident() {
        if (auto cn = domain::findCaseNumber(mail_.subject))
            if (auto inc = incidents_.byCaseNumber(*cn)) return inc;
        if (auto inc = incidents_.byThreadMessageId(mail_.inReplyTo)) return inc;
        for (auto it = mail_.references.rbegin(); it != mail_.references.rend(); ++it)
            if (auto inc = incidents_.byThreadMessageId(*it)) return inc;
        return std::nullopt;
    }

    void handleFollowUp() {
        auto inc = threadIncident();
        if (!inc) {
            // A reply to something that is not a case: read it as a request if it is one.
            if (!mail::extractRequestFields(mail_.text).empty()) return handleRequest();
            return ignore("follow_up", "reply to no known case");
        }
        mail::TemplateData d;
        d.set("case_number", inc->caseNumber);
        if (!mayAddTo(*inc) || !authenticated()) {
            reply("follow_up_refused", "follow_up_refused", d, languageOf(sender_));
            ++report_.refused;
            return finish("done", "follow_up", sender_, "not the requester nor a contact of the partner of " + inc->caseNumber);
        }
        incidents_.addMessage(inc->id, "in", mail_.messageId, row_->id);
        std::string ours = reply("follow_up", "follow_up_added", d, languageOf(sender_));
        if (!ours.empty()) incidents_.addMessage(inc->id, "out", ours, 0);
        ++report_.followUps;
        log_.information("inbound #" + std::to_string(row_->id) + " added to " + inc->caseNumber);
        finish("done", "follow_up", sender_, "added to " + inc->caseNumber);
    }

    bool mayAddTo(const store::IncidentRow& inc) {
        if (sender_ == lower(inc.requesterEmail)) return true;
        auto contract = contracts_.byId(inc.contractRef);
        if (!contract) return false;
        for (const auto& c : ref_.contactsByEmail(sender_))
            if (c.partnerId == contract->partnerId) return true;
        return false;
    }

    void refuse(domain::RequestOutcome outcome, const std::string& reason, mail::TemplateData d) {
        for (auto o : {domain::RequestOutcome::UnknownPair, domain::RequestOutcome::Expired,
                       domain::RequestOutcome::NoIncidentsLeft, domain::RequestOutcome::UnknownProduct,
                       domain::RequestOutcome::OutOfScope, domain::RequestOutcome::ProductWithoutIds,
                       domain::RequestOutcome::MissingIds, domain::RequestOutcome::AmbiguousContract,
                       domain::RequestOutcome::MissingSeverity})
            d.set(domain::toString(o), o == outcome);
        d.set("reason", reason);
        std::string known;
        for (const auto& p : s_.products.all())
            if (p.usesIds) known += (known.empty() ? "" : ", ") + p.name;
        d.set("known_products", known);
        reply("refused", "request_refused", d, languageOf(sender_));
        ++report_.refused;
        log_.information("inbound #" + std::to_string(row_->id) + " from " + sender_ + " refused: " +
                         domain::toString(outcome));
        finish("done", "request", sender_, "refused: " + domain::toString(outcome));
    }

    void handleRequest() {
        auto fields = mail::extractRequestFields(mail_.text);
        if (fields.empty() && !mail_.html.empty()) fields = mail::extractRequestFields(mail_.html);
        const std::string accessId = digitsOnly(field(fields, "access_id")).size() == field(fields, "access_id").size()
                                         ? field(fields, "access_id")
                                         : Poco::trim(field(fields, "access_id"));
        const std::string contractId = domain::normalizeContractId(field(fields, "contract_id"));
        const std::string productText = field(fields, "product");
        mail::TemplateData d;
        d.set("access_id_digits", std::to_string(digitsOnly(accessId).size()));
        d.set("product", productText);
        d.set("contract_display", "");
        d.set("expires_on", "");
        d.set("portal", "");
        d.set("scope_text", "");

        std::optional<domain::Contract> contract;
        if (!accessId.empty() || !contractId.empty()) {
            contract = contracts_.byPair(accessId, contractId);
        } else {
            const domain::Product* product = s_.products.find(productText);
            if (product && !product->usesIds) {
                d.set("portal", product->portal);
                d.set("product", product->name);
                return refuse(domain::RequestOutcome::ProductWithoutIds,
                              product->name + " does not use Access IDs and Contract IDs: open the request at " +
                                  product->portal + ". Nothing was deducted.",
                              d);
            }
            auto linked = authenticated() ? incidents_.linkedContracts(sender_) : std::vector<std::int64_t>{};
            if (linked.empty())
                return refuse(domain::RequestOutcome::MissingIds,
                              "The request carries no Access ID and Contract ID, and your address is not linked to a "
                              "contract yet.",
                              d);
            if (linked.size() > 1)
                return refuse(domain::RequestOutcome::AmbiguousContract,
                              "Your address is linked to several contracts: give the Access ID and Contract ID of the "
                              "one this request is for.",
                              d);
            contract = contracts_.byId(linked.front());
        }
        std::optional<domain::ContractFacts> facts;
        if (contract) {
            facts = domain::ContractFacts{*contract, contracts_.balance(contract->id)};
            d.set("contract_display", contract->displayName);
            d.set("expires_on", contract->expiresOn);
            d.set("scope_text", scopeText(contract->scope, languageOf(sender_)));
        }
        auto decision = domain::decideRequest(facts, accessId, productText, field(fields, "severity"), s_.products,
                                              domain::isoDate(now_));
        if (decision.product) {
            d.set("product", decision.product->name);
            d.set("portal", decision.product->portal);
        }
        if (decision.outcome != domain::RequestOutcome::Accepted) return refuse(decision.outcome, decision.reason, d);

        // Accepted: the case, the debit (keyed by this inbound row: at most once), the link, the confirmation.
        const auto& target = s_.severities.of(*decision.severity);
        Poco::Timestamp due = domain::responseDue(now_, target, s_.calendar);
        store::IncidentRow inc;
        inc.contractRef = contract->id;
        inc.inboundRef = row_->id;
        inc.requesterEmail = sender_;
        inc.product = decision.product->name;
        inc.usageType = field(fields, "usage_type");
        inc.problemType = field(fields, "problem_type");
        inc.category = field(fields, "category");
        inc.severity = domain::toString(*decision.severity);
        inc.description = field(fields, "description");
        for (const auto& a : mail_.attachments)
            if (!a.name.empty()) inc.attachments += (inc.attachments.empty() ? "" : ", ") + a.name;
        inc.responseHours = target.hours;
        inc.dueAt = due.epochTime();
        inc = incidents_.create(inc, Poco::DateTimeFormatter::format(now_, "%Y"));
        contracts_.appendLedger(contract->id, -1, "incident " + inc.caseNumber, "debit:inbound:" + std::to_string(row_->id));
        if (authenticated()) incidents_.link(sender_, contract->id);
        incidents_.addMessage(inc.id, "in", mail_.messageId, row_->id);

        d.set("case_number", inc.caseNumber);
        d.set("severity", inc.severity);
        d.set("severity_a", *decision.severity == domain::Severity::A);
        d.set("severity_b", *decision.severity == domain::Severity::B);
        d.set("severity_c", *decision.severity == domain::Severity::C);
        d.set("response_hours", std::to_string(target.hours));
        d.set("around_the_clock", target.aroundTheClock);
        d.set("due_local", domain::formatLocal(due, s_.calendar));
        d.set("incidents_left", std::to_string(facts->balance - 1));
        std::string ours = reply("accepted", "request_accepted", d, languageOf(sender_));
        if (!ours.empty()) incidents_.addMessage(inc.id, "out", ours, 0);
        ++report_.accepted;
        log_.information("inbound #" + std::to_string(row_->id) + " from " + sender_ + " → " + inc.caseNumber +
                         " on " + contract->displayName + ", severity " + inc.severity);
        finish("done", "request", sender_, "accepted: " + inc.caseNumber);
    }

    store::Database& db_;
    const app::Settings& s_;
    const mail::TemplateSet& templates_;
    Poco::Logger& log_;
    Poco::Timestamp now_;
    ProcessReport& report_;
    store::Outbox outbox_;
    store::Inbound inbound_;
    store::Incidents incidents_;
    store::Contracts contracts_;
    store::ReferenceData ref_;
    const store::InboundRow* row_ = nullptr;
    mail::ParsedMail mail_;
    std::string sender_, replyTo_;
};

}  // namespace

ProcessReport process(store::Database& db, const app::Settings& settings, const mail::TemplateSet& templates,
                      Poco::Logger& log, const Poco::Timestamp& now, ProgressSink* progress) {
    ProcessReport report;
    store::Inbound inbound(db);
    if (progress) progress->begin(inbound.counts().pending);
    std::int64_t afterId = 0;
    // A page of messages (process.batch) is one transaction, each message inside it
    // its own savepoint: one fsync per page instead of one per message (about half
    // of a run's time), and still all or nothing per message. A crash before the
    // commit leaves the whole page pending: the next run does it again, and since
    // everything a message causes (incident, debit, reply in the outbox, its own end
    // state) is in that transaction, nothing is done twice. A message whose handling
    // throws is rolled back alone; the page so far is committed, then the error goes up.
    for (;;) {
        auto rows = inbound.pending(afterId, settings.process.batch);
        if (rows.empty()) break;
        store::Transaction tx(db);
        std::int64_t inPage = 0;
        for (const auto& row : rows) {
            afterId = row.id;
            store::Savepoint message(db, "message");
            try {
                MessageHandler handler(db, settings, templates, log, now, report);
                handler.handle(row);
            } catch (...) {
                message.rollback();  // this message's work only
                tx.commit();
                progressAdvance(progress, inPage);
                throw;
            }
            message.release();
            ++inPage;
        }
        crashPoint("process.before_commit");
        tx.commit();
        progressAdvance(progress, inPage);
    }
    return report;
}

}  // namespace sm::jobs
