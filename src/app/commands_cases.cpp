// case and contract: what administrators do with cases (close, show, list) and
// what they see of contracts (DOMAIN.md flows 8 and 10). Access IDs and Contract
// IDs are bearer secrets: everything printed here shows them masked only, also
// when a requester quoted them in a description.
#include <algorithm>
#include <cctype>
#include <iomanip>
#include <sstream>

#include <Poco/DateTimeFormatter.h>
#include <Poco/String.h>
#include <Poco/Timestamp.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"
#include "app/listing.h"
#include "domain/ids.h"
#include "jobs/close_case.h"
#include "mail/templates.h"
#include "store/contracts.h"
#include "store/disclosures.h"
#include "store/inbound.h"
#include "store/incidents.h"
#include "mail/mime_parser.h"
#include "store/reference_data.h"

using Poco::Util::Option;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

namespace sm::app {
namespace {

/// A contract by row id (digits, "#12"), Contract ID, display name or masked Access
/// ID ("0037xxxxxx", as every listing shows it). A full Access ID is refused: it is
/// a secret and does not belong on a command line (shell history, ps).
domain::Contract findContract(store::Database& db, const std::string& given) {
    store::Contracts contracts(db);
    std::string g = Poco::trim(given);
    if (!g.empty() && g[0] == '#') g.erase(0, 1);
    std::optional<domain::Contract> c;
    if (domain::isValidAccessId(g))
        throw NotActionable("'" + domain::maskAccessId(g) + "' looks like an Access ID: give the masked form " +
                       domain::maskAccessId(g) + ", the row id (#N), the Contract ID or the display name");
    if (!g.empty() && g.size() < 10 && std::all_of(g.begin(), g.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
        c = contracts.byId(std::stoll(g));
        if (!c) throw NotActionable("unknown contract #" + g + ": no contract has this row id");
        return *c;
    }
    c = contracts.byContractId(domain::normalizeContractId(g));
    if (c) return *c;
    auto named = contracts.byDisplayNameOrMaskedAccessId(g);
    if (named.size() == 1) return named.front();
    if (named.size() > 1) {
        std::string ids;
        for (std::size_t i = 0; i < named.size() && i < 10; ++i) ids += (ids.empty() ? "#" : ", #") + std::to_string(named[i].id);
        throw NotActionable("'" + g + "' names " + std::to_string(named.size()) + " contracts (" + ids +
                       (named.size() > 10 ? ", ..." : "") + "): give the row id");
    }
    const std::string shown = domain::isValidContractId(domain::normalizeContractId(g))
                                  ? domain::maskContractId(domain::normalizeContractId(g))
                                  : g;
    throw NotActionable("unknown contract '" + shown +
                   "': no contract has this row id, Contract ID, display name or masked Access ID");
}

std::string contractLabel(const std::optional<domain::Contract>& c, std::int64_t ref) {
    if (!c) return "#" + std::to_string(ref) + " (unknown contract)";
    return "#" + std::to_string(c->id) + " " + c->displayName;
}

std::string stateFilter(const Args& args) {
    if (!args.has("state")) return "";
    std::string s = Poco::toLower(Poco::trim(args.get("state")));
    if (s != "open" && s != "closed") throw UsageError("--state must be open or closed, not '" + args.get("state") + "'");
    return s;
}

// ---- case ----

int caseClose(CommandContext& app, const Args& args) {
    requireOnly(args, "close", {"decrement", "non-decrement", "note"});
    if (args.positional.size() != 2) throw UsageError("expected: case close CASE --decrement|--non-decrement [--note TEXT]");
    const bool dec = args.has("decrement"), nondec = args.has("non-decrement");
    if (dec == nondec) throw UsageError("give exactly one of --decrement and --non-decrement");
    app.applyLogging();
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    auto kind = nondec ? jobs::ClosureKind::NonDecrement : jobs::ClosureKind::Decrement;
    jobs::ClosureReport r;
    try {
        r = jobs::closeCase(app.database(), settings, templates, args.positional[1], kind, args.get("note"), app.log());
    } catch (const jobs::CaseError& e) {
        app.err() << "supportmail case close: " << e.what() << "\n";
        return kExitDataErr;
    }
    app.out() << "case " << r.caseNumber << " closed as " << jobs::toString(kind) << " on " << r.contractDisplay;
    if (r.credited) app.out() << "; the incident was credited back";
    if (r.creditWrittenOff) app.out() << " and written off again (the contract has expired)";
    app.out() << "; incidents left: " << r.balance << "\n";
    if (!r.recipient.empty()) app.out() << "the requester " << r.recipient << " is told (mail queued)\n";
    else app.err() << "the requester could not be told (see the log)\n";
    return kExitOk;
}

/// Open and past its due time.
bool overdue(const store::IncidentRow& r, std::int64_t nowAt) { return r.state == "open" && r.dueAt > 0 && r.dueAt < nowAt; }

std::string dueText(const store::IncidentRow& r, std::int64_t nowAt) {
    std::string s = utcTime(r.dueAt);
    if (overdue(r, nowAt)) {
        const auto late = (nowAt - r.dueAt) / 60;
        s += " (OVERDUE by " + (late >= 60 ? std::to_string(late / 60) + " h " : std::string()) +
             std::to_string(late % 60) + " min)";
    }
    return s;
}

/// The subject of the mail that opened the case (the incident row keeps no copy).
std::string caseSubject(store::Database& db, const store::IncidentRow& inc) {
    const std::string raw = store::Inbound(db).raw(inc.inboundRef);
    return raw.empty() ? std::string() : mail::parseMail(raw).subject;
}

Poco::JSON::Object::Ptr caseJson(const store::IncidentRow& r, const std::optional<domain::Contract>& c,
                                 std::int64_t nowAt, const Scrubber& scrub) {
    auto o = jsonObject();
    o->set("case_number", r.caseNumber);
    o->set("state", r.state);
    o->set("closure_kind", r.closureKind);
    o->set("severity", r.severity);
    o->set("response_business_hours", r.responseHours);
    o->set("opened_at", isoTime(r.createdAt));
    o->set("due_at", isoTime(r.dueAt));
    o->set("overdue", overdue(r, nowAt));
    o->set("contract_row", r.contractRef);
    o->set("contract", c ? c->displayName : std::string());
    o->set("requester", r.requesterEmail);
    o->set("product", scrub(r.product));
    return o;
}

int caseShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {"json"});
    if (args.positional.size() != 2) throw UsageError("expected: case show CASE");
    auto& db = app.database();
    store::Incidents incidents(db);
    const std::string number = Poco::toUpper(Poco::trim(args.positional[1]));
    auto inc = incidents.byCaseNumber(number);
    if (!inc) throw NotActionable("unknown case '" + args.positional[1] + "': no incident has this case number");
    store::Contracts contracts(db);
    auto contract = contracts.byId(inc->contractRef);
    Scrubber scrub(db);
    const std::int64_t nowAt = store::Database::nowSeconds();
    const std::string subject = caseSubject(db, *inc);
    const auto thread = incidents.thread(inc->id);
    if (args.has("json")) {
        auto o = caseJson(*inc, contract, nowAt, scrub);
        o->set("subject", scrub(subject));
        o->set("contract_id", contract ? domain::maskContractId(contract->contractId) : std::string());
        o->set("usage_type", scrub(inc->usageType));
        o->set("problem_type", scrub(inc->problemType));
        o->set("category", scrub(inc->category));
        o->set("closed_at", isoTime(inc->state == "closed" ? incidents.closedAt(inc->id) : 0));
        o->set("closure_note", scrub(inc->state == "closed" ? incidents.closureNote(inc->id) : std::string()));
        o->set("attachments", scrub(inc->attachments));
        o->set("description", scrub(inc->description));
        Poco::JSON::Array::Ptr t = new Poco::JSON::Array;
        for (const auto& e : thread) {
            auto j = jsonObject();
            j->set("direction", e.direction);
            j->set("at", isoTime(e.createdAt));
            j->set("message_id", e.messageId);
            t->add(j);
        }
        o->set("thread", t);
        printJson(app.out(), o);
        return kExitOk;
    }
    std::ostringstream o;
    o << "Case " << inc->caseNumber << " (" << inc->state << ")" << (overdue(*inc, nowAt) ? " OVERDUE" : "") << "\n";
    o << "  Subject:       " << orDash(subject) << "\n";
    o << "  Contract:      " << contractLabel(contract, inc->contractRef);
    if (contract) o << ", Contract ID " << domain::maskContractId(contract->contractId) << ", partner " << contract->partnerId;
    o << "\n";
    o << "  Requester:     " << inc->requesterEmail << "\n";
    o << "  Product:       " << inc->product << "\n";
    o << "  Usage type:    " << orDash(inc->usageType) << "\n";
    o << "  Problem type:  " << orDash(inc->problemType) << "\n";
    o << "  Category:      " << orDash(inc->category) << "\n";
    o << "  Severity:      " << inc->severity << ", first response within " << inc->responseHours
      << " business hours\n";
    o << "  Opened:        " << utcTime(inc->createdAt) << "\n";
    o << "  Due:           " << dueText(*inc, nowAt) << "\n";
    if (inc->state == "closed") {
        o << "  Closed:        " << utcTime(incidents.closedAt(inc->id)) << " as " << orDash(inc->closureKind)
          << (inc->closureKind == "non_decrement" ? " (incident credited back)" : "") << "\n";
        std::string note = incidents.closureNote(inc->id);
        if (!note.empty()) o << "  Note:          " << note << "\n";
    }
    o << "  Attachments:   " << orDash(inc->attachments) << "\n";
    o << "  Description:   " << orDash(inc->description) << "\n";
    o << "  Thread:        " << thread.size() << (thread.size() == 1 ? " message" : " messages") << "\n";
    for (const auto& e : thread)
        o << "    " << (e.direction == "in" ? "in  " : "out ") << utcTime(e.createdAt) << "  " << orDash(e.messageId)
          << "\n";
    app.out() << scrub(o.str());
    return kExitOk;
}

int caseList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"contract", "state", "overdue", "json"});
    if (args.positional.size() != 1)
        throw UsageError("expected: case list [--contract ID] [--state open|closed] [--overdue]");
    std::string state = stateFilter(args);
    const bool onlyOverdue = args.has("overdue");
    if (onlyOverdue && state == "closed") throw UsageError("--overdue lists open cases: it does not go with --state closed");
    if (onlyOverdue) state = "open";
    auto& db = app.database();
    std::int64_t contractRef = 0;
    if (args.has("contract")) contractRef = findContract(db, args.get("contract")).id;
    store::Incidents incidents(db);
    store::Contracts contracts(db);
    const std::int64_t nowAt = store::Database::nowSeconds();
    std::vector<store::IncidentRow> rows;
    for (auto& r : incidents.list(contractRef, state))
        if (!onlyOverdue || overdue(r, nowAt)) rows.push_back(std::move(r));
    std::map<std::int64_t, std::optional<domain::Contract>> cache;
    auto contractOf = [&](std::int64_t ref) -> const std::optional<domain::Contract>& {
        auto it = cache.find(ref);
        if (it == cache.end()) it = cache.emplace(ref, contracts.byId(ref)).first;
        return it->second;
    };
    Scrubber scrub(db);
    if (args.has("json")) {
        auto root = jsonObject();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& r : rows) list->add(caseJson(r, contractOf(r.contractRef), nowAt, scrub));
        root->set("cases", list);
        root->set("count", rows.size());
        printJson(app.out(), root);
        return kExitOk;
    }
    Table t({"CASE", "STATE", "CLOSURE", "SEV", "OPENED", "DUE", "CONTRACT", "REQUESTER"});
    for (const auto& r : rows)
        t.add({r.caseNumber, r.state, orDash(r.closureKind), r.severity, utcTime(r.createdAt),
               overdue(r, nowAt) ? utcTime(r.dueAt) + " OVERDUE" : utcTime(r.dueAt),
               contractLabel(contractOf(r.contractRef), r.contractRef), r.requesterEmail});
    std::ostringstream o;
    t.print(o);
    o << rows.size() << (rows.size() == 1 ? " case" : " cases") << (onlyOverdue ? " overdue" : "") << "\n";
    app.out() << scrub(o.str());
    return kExitOk;
}

int runCase(CommandContext& app, const Args& args) {
    return runSubcommand(app, args, "case", {{"close", caseClose}, {"show", caseShow}, {"list", caseList}});
}

// ---- contract ----

Poco::JSON::Object::Ptr contractJson(const domain::Contract& c, const store::Contracts::Tally& t) {
    auto o = jsonObject();
    o->set("id", c.id);
    o->set("display_name", c.displayName);
    o->set("contract_id", domain::maskContractId(c.contractId));
    o->set("access_id", domain::maskAccessId(c.accessId));
    o->set("partner_id", c.partnerId);
    o->set("location_id", c.locationId);
    o->set("plan", c.planKey);
    o->set("scope", domain::toString(c.scope));
    o->set("state", domain::toString(c.state));
    o->set("activated_on", c.activatedOn);
    o->set("expires_on", c.expiresOn);
    o->set("incidents_granted", c.incidentsGranted);
    o->set("incidents_left", t.balance);
    o->set("hours", c.hoursGranted);
    o->set("open_cases", t.open);
    o->set("closed_cases", t.closed);
    return o;
}

int contractShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {"json"});
    if (args.positional.size() != 2)
        throw UsageError("expected: contract show ID (row id, Contract ID, display name or masked Access ID)");
    auto& db = app.database();
    auto c = findContract(db, args.positional[1]);
    store::Contracts contracts(db);
    store::Incidents incidents(db);
    store::ReferenceData ref(db);
    auto partner = ref.partner(c.partnerId);
    auto cases = incidents.list(c.id);
    std::vector<store::IncidentRow> open, closed;
    for (auto& r : cases) (r.state == "open" ? open : closed).push_back(r);
    const int balance = contracts.balance(c.id);
    Scrubber scrub(db);
    if (args.has("json")) {
        store::Contracts::Tally t;
        t.balance = balance;
        t.open = static_cast<int>(open.size());
        t.closed = static_cast<int>(closed.size());
        auto o = contractJson(c, t);
        o->set("plan_name", contracts.planName(c.id));
        o->set("partner_name", partner ? partner->name : std::string());
        const std::int64_t nowAt = store::Database::nowSeconds();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& r : cases) list->add(caseJson(r, c, nowAt, scrub));
        o->set("cases", list);
        printJson(app.out(), o);
        return kExitOk;
    }
    std::ostringstream o;
    o << "Contract #" << c.id << ": " << c.displayName << "\n";
    o << "  Contract ID:        " << domain::maskContractId(c.contractId) << "\n";
    o << "  Access ID:          " << domain::maskAccessId(c.accessId) << "\n";
    o << "  Partner:            " << c.partnerId << (partner ? " " + partner->name : std::string())
      << (c.locationId.empty() ? std::string() : ", location " + c.locationId) << "\n";
    o << "  Plan:               " << contracts.planName(c.id) << " (" << c.planKey << ", scope "
      << domain::toString(c.scope) << ")\n";
    o << "  State:              " << domain::toString(c.state) << "\n";
    o << "  Activated:          " << c.activatedOn << "\n";
    o << "  Expires:            " << c.expiresOn << "\n";
    o << "  Incidents granted:  " << c.incidentsGranted << "\n";
    o << "  Incidents left:     " << balance << " (the ledger's balance)\n";
    o << "  Advisory hours:     " << c.hoursGranted << "\n";
    o << "  Open cases:         " << open.size() << "\n";
    for (const auto& r : open)
        o << "    " << r.caseNumber << "  severity " << r.severity << ", opened " << utcTime(r.createdAt) << ", "
          << r.product << ", " << r.requesterEmail << "\n";
    o << "  Closed cases:       " << closed.size() << "\n";
    for (const auto& r : closed)
        o << "    " << r.caseNumber << "  " << orDash(r.closureKind) << ", closed " << utcTime(incidents.closedAt(r.id))
          << ", " << r.product << ", " << r.requesterEmail << "\n";
    app.out() << scrub(o.str());
    return kExitOk;
}

int contractList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"partner", "json"});
    if (args.positional.size() != 1) throw UsageError("expected: contract list [--partner ID]");
    auto& db = app.database();
    store::Contracts contracts(db);
    const auto all = contracts.list(Poco::trim(args.get("partner")));
    const auto tallies = contracts.tallies();  // two grouped queries, not three per contract
    auto tallyOf = [&](std::int64_t id) {
        auto it = tallies.find(id);
        return it == tallies.end() ? store::Contracts::Tally{} : it->second;
    };
    // Every column printed is masked already (display name, Contract ID): no scrubbing pass.
    if (args.has("json")) {
        auto root = jsonObject();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& c : all) list->add(contractJson(c, tallyOf(c.id)));
        root->set("contracts", list);
        root->set("count", all.size());
        printJson(app.out(), root);
        return kExitOk;
    }
    Table t({"ID", "CONTRACT", "CONTRACT ID", "PARTNER", "STATE", "EXPIRES", "INCIDENTS", "HOURS", "OPEN/CLOSED"});
    for (const auto& c : all) {
        const auto tally = tallyOf(c.id);
        t.add({"#" + std::to_string(c.id), c.displayName, domain::maskContractId(c.contractId), c.partnerId,
               domain::toString(c.state), c.expiresOn,
               std::to_string(tally.balance) + "/" + std::to_string(c.incidentsGranted), std::to_string(c.hoursGranted),
               std::to_string(tally.open) + "/" + std::to_string(tally.closed)});
    }
    std::ostringstream o;
    t.print(o);
    o << all.size() << (all.size() == 1 ? " contract" : " contracts") << "\n";
    app.out() << o.str();
    return kExitOk;
}

/// Every disclosure of the contract's ID pair: when, to whom, under which rule, in which mail.
int contractDisclosures(CommandContext& app, const Args& args) {
    requireOnly(args, "disclosures", {});
    if (args.positional.size() != 2) throw UsageError("expected: contract disclosures ID");
    auto& db = app.database();
    const auto c = findContract(db, args.positional[1]);
    auto rows = store::Disclosures(db).ofContract(c.id);
    std::ostringstream o;
    o << "Contract #" << c.id << " " << c.displayName << " (Access ID " << domain::maskAccessId(c.accessId)
      << ", Contract ID " << domain::maskContractId(c.contractId) << ")\n";
    o << std::left << std::setw(22) << "WHEN" << std::setw(34) << "TO" << std::setw(24) << "RULE" << std::setw(9)
      << "OUTBOX" << "MESSAGE-ID\n";
    for (const auto& d : rows)
        o << std::left << std::setw(22) << utcTime(d.createdAt) << std::setw(34) << d.recipient << std::setw(24)
          << d.rule << std::setw(9) << ("#" + std::to_string(d.outboxRef)) << d.messageId << "\n";
    o << rows.size() << (rows.size() == 1 ? " disclosure" : " disclosures") << "\n";
    app.out() << Scrubber(db)(o.str());
    return kExitOk;
}

int runContract(CommandContext& app, const Args& args) {
    return runSubcommand(app, args, "contract",
                         {{"show", contractShow}, {"list", contractList}, {"disclosures", contractDisclosures}});
}

}  // namespace

std::vector<Command> caseCommands() {
    return {
        {"case", "close CASE --decrement|--non-decrement [--note TEXT] | show CASE | list",
         "close, show and list support cases",
         "close: closes an open case. --non-decrement credits its incident back to the contract "
         "(ledger +1, at most once); --decrement leaves the balance. The requester is told by mail "
         "(queued for deliver). show: one case with its subject, due time (OVERDUE when past it) and "
         "thread (direction, time, Message-ID). list: cases, optionally of one contract (row id, "
         "Contract ID, display name or masked Access ID), in one state, or --overdue. --json prints "
         "one JSON document. IDs are shown masked. "
         "Exit 65 for an unknown case or contract, or a case already closed (the message says which).",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("decrement", "", "close: the case used its incident"));
             s.addOption(Option("non-decrement", "", "close: credit the incident back to the contract"));
             s.addOption(Option("note", "", "close: a note for the record and the requester").argument("TEXT"));
             s.addOption(Option("contract", "", "list: only this contract (row id or Contract ID)").argument("ID"));
             s.addOption(Option("state", "", "list: only open or closed cases").argument("open|closed"));
             s.addOption(Option("overdue", "", "list: only open cases past their due time"));
             s.addOption(Option("json", "", "show, list: print one JSON document"));
         },
         1, 2, runCase},
        {"contract", "show ID | list | disclosures ID", "show contracts: balance, hours, expiry and cases (IDs masked)",
         "show: one contract by row id (#N), Contract ID, display name or masked Access ID (0037xxxxxx): "
         "display name, masked IDs, partner, plan, state, activation and expiry, incidents granted and "
         "left (the ledger's balance), hours, open and closed cases. list: every contract, or those of "
         "--partner. --json prints one JSON document. disclosures: every mail that carried the contract's "
         "IDs: when, to whom, under which rule (activation_hq_primary, location_kit, regional_rule, resend, "
         "resend_regional_rule), which outbox mail. "
         "Exit 65 for an unknown contract.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("partner", "", "list: only this partner's contracts").argument("ID"));
             s.addOption(Option("json", "", "show, list: print one JSON document"));
         },
         1, 2, runContract},
    };
}

}  // namespace sm::app
