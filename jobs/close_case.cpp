#include "jobs/close_case.h"
#include "jobs/outgoing.h"

#include <algorithm>

#include <Poco/DateTimeFormatter.h>
#include <Poco/String.h>

#include "mail/compose.h"
#include "store/contracts.h"
#include "store/incidents.h"
#include "store/outbox.h"
#include "store/reference_data.h"

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace sm::jobs {

std::string toString(ClosureKind kind) { return kind == ClosureKind::NonDecrement ? "non_decrement" : "decrement"; }

namespace {

std::string utcTime(std::int64_t seconds) {
    return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(seconds)),
                                           "%Y-%m-%d %H:%M UTC");
}

bool wasDebited(store::Database& db, const store::IncidentRow& inc) {
    // process.cpp keys an incident's debit by its inbound row.
    std::string key = "debit:inbound:" + std::to_string(inc.inboundRef);
    int n = 0;
    db.session() << db.sql("SELECT COUNT(*) FROM ledger WHERE entry_key = ?"), use(key), into(n), now;
    return n > 0;
}

}  // namespace

ClosureReport closeCase(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                        const std::string& caseNumber, ClosureKind kind, const std::string& note, Poco::Logger& log,
                        const Poco::Timestamp& now) {
    const std::string number = Poco::toUpper(Poco::trim(caseNumber));
    const std::string kindName = toString(kind);
    const std::string cleanNote = Poco::trim(note);

    store::Transaction tx(db);
    store::Incidents incidents(db);
    store::Contracts contracts(db);
    store::Outbox outbox(db);
    store::ReferenceData ref(db);

    auto inc = number.empty() ? std::nullopt : incidents.byCaseNumber(number);
    if (!inc) throw CaseError(CaseError::Reason::UnknownCase, "unknown case '" + caseNumber + "': no incident has this case number");
    if (inc->state != "open") {
        std::int64_t at = incidents.closedAt(inc->id);
        throw CaseError(CaseError::Reason::AlreadyClosed,
                        "case " + inc->caseNumber + " is already closed (" +
                            (inc->closureKind.empty() ? std::string("no closure kind") : inc->closureKind) +
                            (at ? ", " + utcTime(at) : std::string()) + "): nothing changed");
    }
    // Locked before the contract's state is read: expire, in another worker, may be
    // writing this contract's remainder off right now.
    contracts.lockedBalance(inc->contractRef);
    auto contract = contracts.byId(inc->contractRef);

    ClosureReport report;
    report.caseNumber = inc->caseNumber;
    report.contractDisplay = contract ? contract->displayName : std::string();

    if (kind == ClosureKind::NonDecrement) {
        if (!wasDebited(db, *inc))
            throw CaseError(CaseError::Reason::NeverDebited, "case " + inc->caseNumber +
                                                                 " never used an incident: there is nothing to credit "
                                                                 "back (close it with --decrement)");
        // The entry key makes a second credit impossible, whatever state the incident row says.
        if (!contracts.appendLedger(inc->contractRef, +1, "non-decrement closure of " + inc->caseNumber,
                                    "credit:incident:" + std::to_string(inc->id)))
            throw CaseError(CaseError::Reason::AlreadyCredited,
                            "case " + inc->caseNumber + " was already credited back: nothing changed");
        report.credited = true;
        // An expired contract's remainder was written off: the credit goes with it
        // (the ledger shows both; the balance of an expired contract stays 0).
        if (contract && contract->state == domain::ContractState::Expired) {
            contracts.appendLedger(inc->contractRef, -1,
                                   "contract expired " + contract->expiresOn + ": credit of " + inc->caseNumber +
                                       " written off",
                                   "writeoff:credit:incident:" + std::to_string(inc->id));
            report.creditWrittenOff = true;
        }
    }
    if (!incidents.close(inc->id, kindName, cleanNote, now.epochTime()))
        throw CaseError(CaseError::Reason::AlreadyClosed,
                        "case " + inc->caseNumber + " is already closed: nothing changed");
    report.balance = contracts.balance(inc->contractRef);

    // Tell the requester, in their language, threaded to our last mail of the case.
    const std::string to = Poco::toLower(Poco::trim(inc->requesterEmail));
    std::string language = "en", name;
    for (const auto& c : ref.contactsByEmail(to)) {
        if (name.empty()) name = c.name;
        if (!c.language.empty()) {
            language = c.language;
            break;
        }
    }
    mail::TemplateData d;
    d.set("case_number", inc->caseNumber);
    d.set("non_decrement", kind == ClosureKind::NonDecrement);
    d.set("decrement", kind == ClosureKind::Decrement);
    // An empty string is "true" in a Mustache section: absent values must be false.
    if (cleanNote.empty()) d.set("note", false);
    else d.set("note", cleanNote);
    if (name.empty()) d.set("contact_name", false);
    else d.set("contact_name", name);
    d.set("contract_display", report.contractDisplay);
    d.set("incidents_left", std::to_string(report.balance));
    d.set("product", inc->product);
    d.set("support_address", settings.supportAddress);
    auto rendered = templates.render("case_closed", language, d);

    auto msg = messageFrom(settings, rendered, now);
    msg.to.push_back({name, to});
    const auto outs = incidents.threadMessageIds(inc->id, "out");
    const auto thread = incidents.threadMessageIds(inc->id, "");
    msg.inReplyTo = !outs.empty() ? outs.back() : (thread.empty() ? std::string() : thread.back());
    if (!msg.inReplyTo.empty()) {
        // The parent's own references (the thread before it), then the parent.
        auto end = std::find(thread.rbegin(), thread.rend(), msg.inReplyTo).base();
        std::vector<std::string> refs(thread.begin(), end);
        if (refs.empty() || refs.back() != msg.inReplyTo) refs.push_back(msg.inReplyTo);
        if (refs.size() > 10) refs.erase(refs.begin() + 1, refs.end() - 9);  // the first and the last nine
        msg.references = refs;
    }
    try {
        auto out = queuedRow(settings, msg, "case_closed", inc->contractRef);
        outbox.enqueue(out);
        incidents.addMessage(inc->id, "out", out.messageId, 0);
        report.recipient = to;
        report.messageId = out.messageId;
    } catch (const std::invalid_argument& e) {
        log.warning("case " + inc->caseNumber + ": cannot tell the requester '" + to + "': " + e.what());
    }
    tx.commit();

    log.information("case " + inc->caseNumber + " closed as " + kindName + " on " + report.contractDisplay +
                    (report.credited ? ": incident credited back" : "") + ", balance " +
                    std::to_string(report.balance));
    return report;
}

}  // namespace sm::jobs
