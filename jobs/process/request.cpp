// process: DOMAIN.md flow 5 (and 6, linking): a request mail becomes a case and a debit, or a
// refusal that names its reason.
#include "jobs/process/message_handler.h"

#include <Poco/DateTimeFormatter.h>

#include "domain/dates.h"
#include "domain/ids.h"
#include "jobs/id_mail.h"
#include "mail/unicode_text.h"

namespace sm::jobs::processing {

void MessageHandler::handleRequest() {
    // The body, or its HTML read as text, or a forwarded message (the forwarding
    // contact is the requester): wherever the labels are.
    const auto& fields = reading().fields;
    // "0230 242 323", "0230-242-323", full-width digits: the digits as typed, in order.
    const auto pair = requestPair(fields);
    const std::string& accessId = pair.first;
    const std::string& contractId = pair.second;
    const std::string productText = field(fields, "product");
    mail::TemplateData d;
    d.set("access_id_digits", std::to_string(digitsOnly(accessId).size()));
    d.set("product", productText);
    d.set("contract_display", "");
    d.set("expires_on", "");
    d.set("portal", "");
    d.set("scope_text", "");
    // A refusal shows what it read, the IDs masked (a mail never repeats them in clear).
    const auto orNone = [](const std::string& v) { return v.empty() ? std::string("-") : v; };
    d.set("received_access_id", accessId.empty() ? "-" : domain::maskAccessId(accessId));
    d.set("received_contract_id", contractId.empty() ? "-" : domain::maskContractId(contractId));
    d.set("received_product", orNone(productText));
    d.set("received_severity", orNone(field(fields, "severity")));

    std::optional<domain::Contract> contract;
    std::optional<int> balance;  // locked (store::Contracts::lockedBalance)
    if (!accessId.empty() || !contractId.empty()) {
        if (auto found = contractOfPair(accessId, contractId)) {
            contract = std::move(found->contract);
            balance = found->balance;
        }
        // Its lock held, nothing written yet: the next message's reads go now.
        if (ahead_) ahead_->sendNext();
    } else {
        const domain::Product* product = s_.products.find(productText);
        if (product && !product->usesIds) {
            d.set("portal", product->portal);
            d.set("product", product->name);
            return refuse(domain::RequestOutcome::ProductWithoutIds, domain::productWithoutIdsReason(*product), d);
        }
        auto linked = authenticated("its address's link to a contract is not used")
                          ? incidents_.linkedContracts(sender_)
                          : std::vector<std::int64_t>{};
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
        if (!balance) balance = contracts_.lockedBalance(contract->id, balanceWait_);
        facts = domain::ContractFacts{*contract, *balance};
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

    // The confirmation first: it renders on the helper thread while this one writes
    // the debit, the link and the thread (all in this message's savepoint).
    d.set("case_number", inc.caseNumber);
    d.set("severity", inc.severity);
    d.set("severity_a", *decision.severity == domain::Severity::A);
    d.set("severity_b", *decision.severity == domain::Severity::B);
    d.set("severity_c", *decision.severity == domain::Severity::C);
    d.set("response_hours", std::to_string(target.hours));
    d.set("around_the_clock", target.aroundTheClock);
    d.set("due_local", domain::formatLocal(due, s_.calendar));
    // Beside the support centre's time, the contact's own (by the contact's country).
    std::string contactZone;
    for (const auto& c : senderContacts())
        if (auto z = s_.countryTimeZones.find(Poco::toUpper(c.country)); z != s_.countryTimeZones.end()) {
            contactZone = z->second;
            break;
        }
    if (!contactZone.empty() && contactZone != s_.calendar.timeZone)
        d.set("due_contact", domain::formatInZone(due, contactZone));
    else
        d.set("due_contact", false);
    d.set("incidents_left", std::to_string(facts->balance - 1));
    std::string ours = reply("accepted", "request_accepted", d, languageOf(sender_));
    contracts_.appendLedgerPipelined(contract->id, -1, "incident " + inc.caseNumber, "debit:inbound:" + std::to_string(row_->id));
    if (ahead_) ahead_->debited(contract->id);
    // A contact the CRM no longer lists for this partner is never linked again.
    if (authenticated("its address is not linked to the contract", Consequence::Aside))
        incidents_.link(sender_, contract->id, contract->partnerId);
    incidents_.addExchange(inc.id, mail_.messageId, row_->id, ours);
    ++report_.accepted;
    log_.information("inbound #" + std::to_string(row_->id) + " from " + sender_ + " → " + inc.caseNumber +
                     " on " + contract->displayName + ", severity " + inc.severity);
    finish("done", "request", sender_, "accepted: " + inc.caseNumber);
}

void MessageHandler::refuse(domain::RequestOutcome outcome, const std::string& reason, mail::TemplateData d) {
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

void MessageHandler::handleNoRequest() {
    mail::TemplateData d;
    kainjow::mustache::data labels{kainjow::mustache::data::type::list};
    bool incomplete = false;
    std::string digits;
    auto mentions = mail::labelsMentioned(reading().text);
    for (const auto& m : mentions) {
        kainjow::mustache::data item;
        item.set("label", m.label);
        labels.push_back(item);
        if (m.key == "access_id" && !m.digits.empty() && m.digits.size() != 10) {
            incomplete = true;
            digits = std::to_string(m.digits.size());
        }
    }
    d.set("labels_found", labels);
    d.set("found_any", !mentions.empty());
    d.set("incomplete_access_id", incomplete);
    d.set("access_id_digits", digits);
    reply("no_request", "no_request", d, languageOf(sender_));
    ++report_.refused;
    std::string found;
    for (const auto& m : mentions) found += (found.empty() ? "" : ", ") + m.key;
    log_.information("inbound #" + std::to_string(row_->id) + " from " + sender_ +
                     ": no support request found" + (found.empty() ? "" : " (mentions " + found + ")"));
    finish("done", "no_request", sender_, "answered: no support request found" +
                                              (found.empty() ? std::string() : " (mentions " + found + ")"));
}

}  // namespace sm::jobs::processing
