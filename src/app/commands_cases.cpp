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
#include "domain/ids.h"
#include "jobs/close_case.h"
#include "mail/templates.h"
#include "store/contracts.h"
#include "store/disclosures.h"
#include "store/incidents.h"
#include "store/reference_data.h"

using Poco::Util::Option;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

namespace sm::app {
namespace {

/// A contract or case the administrator named that does not exist (exit 65).
class NotFound : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::string utcTime(std::int64_t seconds) {
    if (seconds <= 0) return "-";
    return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(seconds)),
                                           "%Y-%m-%d %H:%M UTC");
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

/// Replaces every Access ID and Contract ID of the store that occurs in text by its
/// masked form: descriptions and notes are free text and may quote them.
class Scrubber {
public:
    explicit Scrubber(store::Database& db) {
        std::vector<std::string> access, contract;
        db.session() << "SELECT access_id, contract_id FROM contracts", into(access), into(contract), now;
        for (const auto& a : access)
            if (!a.empty()) pairs_.emplace_back(a, domain::maskAccessId(a));
        for (const auto& c : contract)
            if (!c.empty()) pairs_.emplace_back(c, domain::maskContractId(c));
    }
    std::string operator()(std::string text) const {
        for (const auto& [clear, masked] : pairs_)
            for (auto p = text.find(clear); p != std::string::npos; p = text.find(clear, p + masked.size()))
                text.replace(p, clear.size(), masked);
        return text;
    }

private:
    std::vector<std::pair<std::string, std::string>> pairs_;
};

/// A contract by row id (digits) or by Contract ID.
domain::Contract findContract(store::Database& db, const std::string& given) {
    store::Contracts contracts(db);
    const std::string g = Poco::trim(given);
    std::optional<domain::Contract> c;
    if (!g.empty() && std::all_of(g.begin(), g.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
        try {
            c = contracts.byId(std::stoll(g));
        } catch (const std::out_of_range&) {
        }
        if (!c) throw NotFound("unknown contract #" + g + " (no contract has this row id)");
        return *c;
    }
    c = contracts.byContractId(domain::normalizeContractId(g));
    if (!c) throw NotFound("unknown contract " + domain::maskContractId(domain::normalizeContractId(g)) +
                           " (give the row id or the Contract ID)");
    return *c;
}

std::string contractLabel(const std::optional<domain::Contract>& c, std::int64_t ref) {
    if (!c) return "#" + std::to_string(ref) + " (unknown contract)";
    return "#" + std::to_string(c->id) + " " + c->displayName;
}

void requireOnly(const Args& args, const std::string& sub, const std::vector<std::string>& allowed) {
    for (const auto& [name, value] : args.options) {
        (void)value;
        if (name == "help" || std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
        throw UsageError("--" + name + " does not apply to '" + sub + "'");
    }
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

int caseShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {});
    if (args.positional.size() != 2) throw UsageError("expected: case show CASE");
    auto& db = app.database();
    store::Incidents incidents(db);
    const std::string number = Poco::toUpper(Poco::trim(args.positional[1]));
    auto inc = incidents.byCaseNumber(number);
    if (!inc) throw NotFound("unknown case '" + args.positional[1] + "': no incident has this case number");
    store::Contracts contracts(db);
    auto contract = contracts.byId(inc->contractRef);
    Scrubber scrub(db);
    std::ostringstream o;
    o << "Case " << inc->caseNumber << " (" << inc->state << ")\n";
    o << "  Contract:      " << contractLabel(contract, inc->contractRef);
    if (contract) o << ", Contract ID " << domain::maskContractId(contract->contractId) << ", partner " << contract->partnerId;
    o << "\n";
    o << "  Requester:     " << inc->requesterEmail << "\n";
    o << "  Product:       " << inc->product << "\n";
    o << "  Usage type:    " << orDash(inc->usageType) << "\n";
    o << "  Problem type:  " << orDash(inc->problemType) << "\n";
    o << "  Category:      " << orDash(inc->category) << "\n";
    o << "  Severity:      " << inc->severity << ", first response within " << inc->responseHours << " h, due "
      << utcTime(inc->dueAt) << "\n";
    o << "  Opened:        " << utcTime(inc->createdAt) << "\n";
    if (inc->state == "closed") {
        o << "  Closed:        " << utcTime(incidents.closedAt(inc->id)) << " as " << orDash(inc->closureKind)
          << (inc->closureKind == "non_decrement" ? " (incident credited back)" : "") << "\n";
        std::string note = incidents.closureNote(inc->id);
        if (!note.empty()) o << "  Note:          " << note << "\n";
    }
    o << "  Attachments:   " << orDash(inc->attachments) << "\n";
    o << "  Messages:      " << incidents.threadLength(inc->id) << "\n";
    o << "  Description:   " << orDash(inc->description) << "\n";
    app.out() << scrub(o.str());
    return kExitOk;
}

void caseTable(std::ostream& o, const std::vector<store::IncidentRow>& rows, store::Contracts& contracts) {
    o << std::left << std::setw(16) << "CASE" << std::setw(8) << "STATE" << std::setw(15) << "CLOSURE" << std::setw(5)
      << "SEV" << std::setw(22) << "OPENED" << std::setw(44) << "CONTRACT"
      << "REQUESTER\n";
    std::map<std::int64_t, std::optional<domain::Contract>> cache;
    for (const auto& r : rows) {
        auto it = cache.find(r.contractRef);
        if (it == cache.end()) it = cache.emplace(r.contractRef, contracts.byId(r.contractRef)).first;
        o << std::left << std::setw(16) << r.caseNumber << std::setw(8) << r.state << std::setw(15)
          << orDash(r.closureKind) << std::setw(5) << r.severity << std::setw(22) << utcTime(r.createdAt)
          << std::setw(44) << contractLabel(it->second, r.contractRef) << r.requesterEmail << "\n";
    }
}

int caseList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"contract", "state"});
    if (args.positional.size() != 1) throw UsageError("expected: case list [--contract ID] [--state open|closed]");
    const std::string state = stateFilter(args);
    auto& db = app.database();
    std::int64_t contractRef = 0;
    if (args.has("contract")) contractRef = findContract(db, args.get("contract")).id;
    store::Incidents incidents(db);
    store::Contracts contracts(db);
    auto rows = incidents.list(contractRef, state);
    std::ostringstream o;
    caseTable(o, rows, contracts);
    o << rows.size() << (rows.size() == 1 ? " case" : " cases") << "\n";
    app.out() << Scrubber(db)(o.str());
    return kExitOk;
}

int runCase(CommandContext& app, const Args& args) {
    const std::string sub = args.positional.at(0);
    try {
        if (sub == "close") return caseClose(app, args);
        if (sub == "show") return caseShow(app, args);
        if (sub == "list") return caseList(app, args);
    } catch (const NotFound& e) {
        app.err() << "supportmail case " << sub << ": " << e.what() << "\n";
        return kExitDataErr;
    }
    throw UsageError("unknown subcommand '" + sub + "': expected close, show or list");
}

// ---- contract ----

int contractShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {});
    if (args.positional.size() != 2) throw UsageError("expected: contract show ID (the row id or the Contract ID)");
    auto& db = app.database();
    auto c = findContract(db, args.positional[1]);
    store::Contracts contracts(db);
    store::Incidents incidents(db);
    store::ReferenceData ref(db);
    auto partner = ref.partner(c.partnerId);
    auto cases = incidents.list(c.id);
    std::vector<store::IncidentRow> open, closed;
    for (auto& r : cases) (r.state == "open" ? open : closed).push_back(r);
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
    o << "  Incidents left:     " << contracts.balance(c.id) << " (the ledger's balance)\n";
    o << "  Advisory hours:     " << c.hoursGranted << "\n";
    o << "  Open cases:         " << open.size() << "\n";
    for (const auto& r : open)
        o << "    " << r.caseNumber << "  severity " << r.severity << ", opened " << utcTime(r.createdAt) << ", "
          << r.product << ", " << r.requesterEmail << "\n";
    o << "  Closed cases:       " << closed.size() << "\n";
    for (const auto& r : closed)
        o << "    " << r.caseNumber << "  " << orDash(r.closureKind) << ", closed " << utcTime(incidents.closedAt(r.id))
          << ", " << r.product << ", " << r.requesterEmail << "\n";
    app.out() << Scrubber(db)(o.str());
    return kExitOk;
}

int contractList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"partner"});
    if (args.positional.size() != 1) throw UsageError("expected: contract list [--partner ID]");
    auto& db = app.database();
    store::Contracts contracts(db);
    store::Incidents incidents(db);
    auto all = contracts.list(Poco::trim(args.get("partner")));
    std::ostringstream o;
    o << std::left << std::setw(6) << "ID" << std::setw(38) << "CONTRACT" << std::setw(14) << "CONTRACT ID"
      << std::setw(10) << "PARTNER" << std::setw(10) << "STATE" << std::setw(12) << "EXPIRES" << std::setw(11)
      << "INCIDENTS" << std::setw(7) << "HOURS" << "OPEN/CLOSED\n";
    for (const auto& c : all) {
        int open = 0, closed = 0;
        for (const auto& r : incidents.list(c.id)) ++(r.state == "open" ? open : closed);
        o << std::left << std::setw(6) << ("#" + std::to_string(c.id)) << std::setw(38) << c.displayName
          << std::setw(14) << domain::maskContractId(c.contractId) << std::setw(10) << c.partnerId << std::setw(10)
          << domain::toString(c.state) << std::setw(12) << c.expiresOn << std::setw(11)
          << (std::to_string(contracts.balance(c.id)) + "/" + std::to_string(c.incidentsGranted)) << std::setw(7)
          << c.hoursGranted << open << "/" << closed << "\n";
    }
    o << all.size() << (all.size() == 1 ? " contract" : " contracts") << "\n";
    app.out() << Scrubber(db)(o.str());
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
    const std::string sub = args.positional.at(0);
    try {
        if (sub == "show") return contractShow(app, args);
        if (sub == "list") return contractList(app, args);
        if (sub == "disclosures") return contractDisclosures(app, args);
    } catch (const NotFound& e) {
        app.err() << "supportmail contract " << sub << ": " << e.what() << "\n";
        return kExitDataErr;
    }
    throw UsageError("unknown subcommand '" + sub + "': expected show, list or disclosures");
}

}  // namespace

std::vector<Command> caseCommands() {
    return {
        {"case", "close CASE --decrement|--non-decrement [--note TEXT] | show CASE | list",
         "close, show and list support cases",
         "close: closes an open case. --non-decrement credits its incident back to the contract "
         "(ledger +1, at most once); --decrement leaves the balance. The requester is told by mail "
         "(queued for deliver). show: one case. list: cases, optionally of one contract (row id or "
         "Contract ID) and in one state. IDs are shown masked.\n"
         "Exit 65 for an unknown case or contract, or a case already closed (the message says which).",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("decrement", "", "close: the case used its incident"));
             s.addOption(Option("non-decrement", "", "close: credit the incident back to the contract"));
             s.addOption(Option("note", "", "close: a note for the record and the requester").argument("TEXT"));
             s.addOption(Option("contract", "", "list: only this contract (row id or Contract ID)").argument("ID"));
             s.addOption(Option("state", "", "list: only open or closed cases").argument("open|closed"));
         },
         1, 2, runCase},
        {"contract", "show ID | list | disclosures ID", "show contracts: balance, hours, expiry and cases (IDs masked)",
         "show: one contract by row id or Contract ID: display name, masked IDs, partner, plan, state, "
         "activation and expiry, incidents granted and left (the ledger's balance), hours, open and "
         "closed cases. list: every contract, or those of --partner. disclosures: every mail that carried "
         "the contract's IDs: when, to whom, under which rule (activation_hq_primary, location_kit, "
         "regional_rule, resend, resend_regional_rule), which outbox mail.\n"
         "Exit 65 for an unknown contract.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("partner", "", "list: only this partner's contracts").argument("ID"));
         },
         1, 2, runContract},
    };
}

}  // namespace sm::app
