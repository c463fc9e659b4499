// outbox, inbound and contact: the operator's queue tools, in the manner of
// Postfix's postqueue -p (list), postcat (show) and postsuper -r/-d (retry,
// cancel). Every list and show prints a table or text by default and, with
// --json, one JSON document whose keys the README documents. IDs are bearer
// secrets: mail bodies and headers are shown through the Scrubber (masked). An
// ID mail queued without its bytes is shown as deliver will render it.
#include <algorithm>
#include <cctype>
#include <sstream>

#include <Poco/String.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"
#include "app/listing.h"
#include "domain/model.h"
#include "jobs/id_mail.h"
#include "mail/mime_parser.h"
#include "store/inbound.h"
#include "store/outbox.h"
#include "store/reference_data.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

std::int64_t rowId(const std::string& given, const std::string& what) {
    std::string g = Poco::trim(given);
    if (!g.empty() && g[0] == '#') g.erase(0, 1);
    if (g.empty() || g.size() > 18 || !std::all_of(g.begin(), g.end(), [](unsigned char c) { return std::isdigit(c); }))
        throw UsageError(what + " '" + given + "': expected a row number (as the list shows it)");
    return std::stoll(g);
}

std::string choice(const Args& args, const std::string& option, const std::vector<std::string>& allowed) {
    if (!args.has(option)) return "";
    const std::string v = Poco::toLower(Poco::trim(args.get(option)));
    if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return v;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : "|") + a;
    throw UsageError("--" + option + " '" + args.get(option) + "': expected " + list);
}

Poco::JSON::Array::Ptr jsonStrings(const std::vector<std::string>& v) {
    Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
    for (const auto& s : v) a->add(s);
    return a;
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

// ---- outbox ----

const std::vector<std::string> kOutboxStates = {"queued", "sent", "parked", "cancelled"};

Poco::JSON::Object::Ptr outboxJson(const store::OutboxRow& r, const mail::ParsedMail& m, const Scrubber& scrub) {
    auto o = jsonObject();
    o->set("id", r.id);
    o->set("state", r.state);
    o->set("kind", r.kind);
    o->set("message_id", r.messageId);
    o->set("subject", scrub(m.subject));
    o->set("envelope_from", r.envelopeFrom);
    o->set("recipients", jsonStrings(r.recipients));
    o->set("attempts", r.attempts);
    o->set("created_at", isoTime(r.createdAt));
    o->set("next_attempt_at", r.state == "queued" ? isoTime(r.nextAttemptAt) : std::string());
    o->set("last_reply", scrub(r.lastReply));
    return o;
}

/// The mail as deliver sends it: an ID mail queued without its bytes is rendered
/// (jobs/id_mail.h); one that cannot be shows why in place of its subject.
mail::ParsedMail mailOf(const jobs::OutboxRenderer& renderer, const store::OutboxRow& r) {
    try {
        return mail::parseMail(renderer.bytesOf(r));
    } catch (const jobs::RenderError& e) {
        mail::ParsedMail m;
        m.subject = std::string("(cannot be rendered: ") + e.what() + ")";
        return m;
    }
}

int outboxList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"state", "kind", "json"});
    if (args.positional.size() != 1) throw UsageError("expected: outbox list [--state S] [--kind K]");
    const std::string state = choice(args, "state", kOutboxStates);
    auto& db = app.database();
    auto rows = store::Outbox(db).list(state, Poco::trim(args.get("kind")));
    Scrubber scrub(db);
    const mail::TemplateSet templates(app.settings().templatesDir);
    const jobs::OutboxRenderer renderer(db, app.settings(), templates);
    if (args.has("json")) {
        auto root = jsonObject();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& r : rows) list->add(outboxJson(r, mailOf(renderer, r), scrub));
        root->set("outbox", list);
        root->set("count", rows.size());
        printJson(app.out(), root);
        return kExitOk;
    }
    Table t({"ID", "STATE", "KIND", "TRIES", "CREATED", "TO", "SUBJECT"});
    for (const auto& r : rows)
        t.add({"#" + std::to_string(r.id), r.state, r.kind, std::to_string(r.attempts), utcTime(r.createdAt),
               joined(r.recipients), scrub(mailOf(renderer, r).subject)});
    std::ostringstream o;
    t.print(o);
    o << rows.size() << (rows.size() == 1 ? " mail" : " mails") << "\n";
    app.out() << o.str();
    return kExitOk;
}

store::OutboxRow outboxRow(store::Database& db, const std::string& given) {
    const auto id = rowId(given, "outbox mail");
    auto row = store::Outbox(db).byId(id);
    if (!row) throw NotActionable("no outbox mail #" + std::to_string(id));
    return *row;
}

int outboxShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {"json"});
    if (args.positional.size() != 2) throw UsageError("expected: outbox show ID");
    auto& db = app.database();
    const auto r = outboxRow(db, args.positional[1]);
    const mail::TemplateSet templates(app.settings().templatesDir);
    const auto m = mailOf(jobs::OutboxRenderer(db, app.settings(), templates), r);
    Scrubber scrub(db);
    if (args.has("json")) {
        auto o = outboxJson(r, m, scrub);
        Poco::JSON::Array::Ptr headers = new Poco::JSON::Array;
        for (const auto& [name, value] : m.headers) {
            auto h = jsonObject();
            h->set("name", name);
            h->set("value", scrub(value));
            headers->add(h);
        }
        o->set("headers", headers);
        o->set("text", scrub(m.text));
        printJson(app.out(), o);
        return kExitOk;
    }
    std::ostringstream o;
    o << "Outbox mail #" << r.id << " (" << r.state << ", " << r.kind << ")\n";
    o << "  Message-ID:    " << r.messageId << "\n";
    o << "  Envelope from: " << r.envelopeFrom << "\n";
    o << "  Recipients:    " << joined(r.recipients) << "\n";
    o << "  Created:       " << utcTime(r.createdAt) << "\n";
    o << "  Attempts:      " << r.attempts;
    if (r.state == "queued") o << ", next " << utcTime(r.nextAttemptAt);
    o << "\n  Last reply:    " << orDash(r.lastReply) << "\n";
    o << "Headers:\n";
    for (const auto& [name, value] : m.headers) o << "  " << name << ": " << value << "\n";
    o << "Text:\n" << m.text;
    if (!m.text.empty() && m.text.back() != '\n') o << "\n";
    app.out() << scrub(o.str());
    return kExitOk;
}

int outboxRetry(CommandContext& app, const Args& args) {
    requireOnly(args, "retry", {"parked"});
    const bool all = args.has("parked");
    if (all == (args.positional.size() == 2) || args.positional.size() > 2)
        throw UsageError("expected: outbox retry ID, or outbox retry --parked");
    app.applyLogging();
    auto& db = app.database();
    store::Outbox outbox(db);
    std::vector<store::OutboxRow> rows;
    if (all) rows = outbox.list("parked", "");
    else rows.push_back(outboxRow(db, args.positional[1]));
    int requeued = 0;
    for (const auto& r : rows) {
        if (r.state != "parked")
            throw NotActionable("outbox mail #" + std::to_string(r.id) + " is " + r.state +
                                ": only parked mail is retried");
        const std::string note = "queued again by an operator after: " + r.lastReply;
        if (!outbox.requeueParked(r.id, note)) continue;  // changed meanwhile
        ++requeued;
        app.log().notice("outbox #" + std::to_string(r.id) + " (" + r.kind + " to " + joined(r.recipients) +
                         ") queued again by an operator; it was parked: " + r.lastReply);
        app.out() << "outbox #" << r.id << " queued again (the next deliver sends it)\n";
    }
    app.out() << "outbox retry: " << requeued << (requeued == 1 ? " mail" : " mails") << " queued again\n";
    return kExitOk;
}

int outboxCancel(CommandContext& app, const Args& args) {
    requireOnly(args, "cancel", {});
    if (args.positional.size() != 2) throw UsageError("expected: outbox cancel ID");
    app.applyLogging();
    auto& db = app.database();
    const auto r = outboxRow(db, args.positional[1]);
    if (!store::Outbox(db).cancel(r.id, "cancelled by an operator; was " + r.state))
        throw NotActionable("outbox mail #" + std::to_string(r.id) + " is " + r.state +
                            ": only queued or parked mail can be cancelled");
    app.log().notice("outbox #" + std::to_string(r.id) + " (" + r.kind + " to " + joined(r.recipients) +
                     ") cancelled by an operator; it was " + r.state);
    app.out() << "outbox #" << r.id << " cancelled (" << r.kind << " to " << joined(r.recipients)
              << "; it will not be sent)\n";
    return kExitOk;
}

int runOutbox(CommandContext& app, const Args& args) {
    return runSubcommand(app, args, "outbox",
                         {{"list", outboxList}, {"show", outboxShow}, {"retry", outboxRetry}, {"cancel", outboxCancel}});
}

// ---- inbound ----

const std::vector<std::string> kInboundStates = {"pending", "done", "ignored", "quarantined", "rejected", "duplicate"};

Poco::JSON::Object::Ptr inboundJson(const store::InboundRow& r, const Scrubber& scrub) {
    auto o = jsonObject();
    o->set("id", r.id);
    o->set("state", r.state);
    o->set("ignored", store::isIgnored(r));
    o->set("classification", r.classification);
    o->set("reason", scrub(r.reason));
    o->set("sender", r.sender);
    o->set("message_id", r.messageId);
    o->set("source", r.source);
    o->set("size", r.size);
    o->set("fetched_at", isoTime(r.fetchedAt));
    return o;
}

int inboundList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"state", "json"});
    if (args.positional.size() != 1) throw UsageError("expected: inbound list [--state S]");
    const std::string state = choice(args, "state", kInboundStates);
    auto& db = app.database();
    auto rows = store::Inbound(db).list(state);
    Scrubber scrub(db);
    if (args.has("json")) {
        auto root = jsonObject();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& r : rows) list->add(inboundJson(r, scrub));
        root->set("inbound", list);
        root->set("count", rows.size());
        printJson(app.out(), root);
        return kExitOk;
    }
    Table t({"ID", "STATE", "FETCHED", "CLASS", "SENDER", "REASON"});
    for (const auto& r : rows)
        t.add({"#" + std::to_string(r.id), store::isIgnored(r) ? "ignored" : r.state, utcTime(r.fetchedAt),
               orDash(r.classification), orDash(r.sender), orDash(scrub(r.reason))});
    std::ostringstream o;
    t.print(o);
    o << rows.size() << (rows.size() == 1 ? " mail" : " mails") << "\n";
    app.out() << o.str();
    return kExitOk;
}

int inboundShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {"json"});
    if (args.positional.size() != 2) throw UsageError("expected: inbound show ID");
    auto& db = app.database();
    store::Inbound inbound(db);
    const auto id = rowId(args.positional[1], "inbound mail");
    auto r = inbound.byId(id);
    if (!r) throw NotActionable("no inbound mail #" + std::to_string(id));
    const auto m = mail::parseMail(inbound.raw(id));
    Scrubber scrub(db);
    if (args.has("json")) {
        auto o = inboundJson(*r, scrub);
        o->set("subject", scrub(m.subject));
        Poco::JSON::Array::Ptr headers = new Poco::JSON::Array;
        for (const auto& [name, value] : m.headers) {
            auto h = jsonObject();
            h->set("name", name);
            h->set("value", scrub(value));
            headers->add(h);
        }
        o->set("headers", headers);
        o->set("defects", jsonStrings(m.defects));
        printJson(app.out(), o);
        return kExitOk;
    }
    std::ostringstream o;
    o << "Inbound mail #" << r->id << " (" << (store::isIgnored(*r) ? "done, ignored" : r->state) << ")\n";
    o << "  Classification: " << orDash(r->classification) << "\n";
    o << "  Reason:         " << orDash(r->reason) << "\n";
    o << "  Sender:         " << orDash(r->sender) << "\n";
    o << "  Message-ID:     " << orDash(r->messageId) << "\n";
    o << "  Source:         " << r->source << " " << r->sourceKey << "\n";
    o << "  Fetched:        " << utcTime(r->fetchedAt) << ", " << r->size << " bytes\n";
    o << "Headers:\n";
    for (const auto& [name, value] : m.headers) o << "  " << name << ": " << value << "\n";
    if (!m.defects.empty()) {
        o << "Defects:\n";
        for (const auto& d : m.defects) o << "  " << d << "\n";
    }
    app.out() << scrub(o.str());
    return kExitOk;
}

int inboundReprocess(CommandContext& app, const Args& args) {
    requireOnly(args, "reprocess", {"quarantined"});
    const bool all = args.has("quarantined");
    if (all == (args.positional.size() == 2) || args.positional.size() > 2)
        throw UsageError("expected: inbound reprocess ID, or inbound reprocess --quarantined");
    app.applyLogging();
    auto& db = app.database();
    store::Inbound inbound(db);
    std::vector<store::InboundRow> rows;
    if (all) {
        rows = inbound.list("quarantined");
    } else {
        const auto id = rowId(args.positional[1], "inbound mail");
        auto r = inbound.byId(id);
        if (!r) throw NotActionable("no inbound mail #" + std::to_string(id));
        rows.push_back(*r);
    }
    int again = 0;
    for (const auto& r : rows) {
        if (!inbound.reprocess(r.id))
            throw NotActionable("inbound mail #" + std::to_string(r.id) + " is " + r.state +
                                (r.state == "done" ? " (" + orDash(r.classification) + ", " + r.reason + ")" : "") +
                                ": only quarantined, rejected or ignored mail is processed again");
        ++again;
        app.log().notice("inbound #" + std::to_string(r.id) + " set back to pending by an operator; it was " +
                         r.state + ": " + r.reason);
        app.out() << "inbound #" << r.id << " pending again (was " << r.state << ": " << orDash(r.reason) << ")\n";
    }
    app.out() << "inbound reprocess: " << again << (again == 1 ? " mail" : " mails")
              << " pending again; the next process run handles them\n";
    return kExitOk;
}

int runInbound(CommandContext& app, const Args& args) {
    return runSubcommand(app, args, "inbound",
                         {{"list", inboundList}, {"show", inboundShow}, {"reprocess", inboundReprocess}});
}

// ---- contact ----

Poco::JSON::Object::Ptr contactJson(const domain::Contact& c) {
    auto o = jsonObject();
    o->set("id", c.id);
    o->set("email", c.email);
    o->set("name", c.name);
    o->set("partner_id", c.partnerId);
    o->set("location_id", c.locationId);
    o->set("role", domain::toString(c.role));
    o->set("language", c.language);
    o->set("country", c.country);
    o->set("address_state", domain::toString(c.addressState));
    return o;
}

int contactList(CommandContext& app, const Args& args) {
    requireOnly(args, "list", {"state", "partner", "json"});
    if (args.positional.size() != 1) throw UsageError("expected: contact list [--state ok|bouncing] [--partner ID]");
    const std::string state = choice(args, "state", {"ok", "bouncing"});
    store::ReferenceData ref(app.database());
    std::vector<domain::Contact> rows;
    const std::string partner = Poco::trim(args.get("partner"));
    for (auto& c : partner.empty() ? ref.contacts(state) : ref.contactsOf(partner))
        if (state.empty() || domain::toString(c.addressState) == state) rows.push_back(std::move(c));
    if (args.has("json")) {
        auto root = jsonObject();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& c : rows) list->add(contactJson(c));
        root->set("contacts", list);
        root->set("count", rows.size());
        printJson(app.out(), root);
        return kExitOk;
    }
    Table t({"EMAIL", "PARTNER", "LOCATION", "ROLE", "LANG", "ADDRESS", "NAME"});
    for (const auto& c : rows)
        t.add({c.email, c.partnerId, orDash(c.locationId), domain::toString(c.role), c.language,
               domain::toString(c.addressState), c.name});
    t.print(app.out());
    app.out() << rows.size() << (rows.size() == 1 ? " contact" : " contacts") << "\n";
    return kExitOk;
}

std::vector<domain::Contact> contactsNamed(store::ReferenceData& ref, const std::string& given) {
    const std::string email = Poco::toLower(Poco::trim(given));
    auto rows = ref.contactsByEmail(email);
    if (rows.empty()) throw NotActionable("no contact has the address " + email);
    return rows;
}

int contactShow(CommandContext& app, const Args& args) {
    requireOnly(args, "show", {"json"});
    if (args.positional.size() != 2) throw UsageError("expected: contact show EMAIL");
    store::ReferenceData ref(app.database());
    const auto rows = contactsNamed(ref, args.positional[1]);
    if (args.has("json")) {
        auto root = jsonObject();
        root->set("email", rows.front().email);
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& c : rows) {
            auto o = contactJson(c);
            auto p = ref.partner(c.partnerId);
            o->set("partner_name", p ? p->name : std::string());
            list->add(o);
        }
        root->set("contacts", list);
        printJson(app.out(), root);
        return kExitOk;
    }
    auto& o = app.out();
    o << "Contact " << rows.front().email << " (" << rows.size() << (rows.size() == 1 ? " partner" : " partners")
      << ")\n";
    for (const auto& c : rows) {
        auto p = ref.partner(c.partnerId);
        o << "  Partner:   " << c.partnerId << (p ? " " + p->name : std::string())
          << (c.locationId.empty() ? std::string() : ", location " + c.locationId) << "\n";
        o << "    Name:    " << c.name << "\n";
        o << "    Role:    " << domain::toString(c.role) << ", language " << c.language << ", country " << c.country
          << "\n";
        o << "    Address: " << domain::toString(c.addressState)
          << (c.addressState == domain::AddressState::Bouncing
                  ? " (mail to it bounced: nothing is sent to it until `contact unblock`)"
                  : "")
          << "\n";
    }
    return kExitOk;
}

int contactUnblock(CommandContext& app, const Args& args) {
    requireOnly(args, "unblock", {});
    if (args.positional.size() != 2) throw UsageError("expected: contact unblock EMAIL");
    app.applyLogging();
    store::ReferenceData ref(app.database());
    const auto rows = contactsNamed(ref, args.positional[1]);
    const bool bouncing = std::any_of(rows.begin(), rows.end(),
                                      [](const auto& c) { return c.addressState == domain::AddressState::Bouncing; });
    if (!bouncing) throw NotActionable(rows.front().email + " is not marked bouncing: nothing to unblock");
    ref.setAddressState(rows.front().email, domain::AddressState::Ok);
    app.log().notice("contact " + rows.front().email + " unblocked by an operator (was bouncing)");
    app.out() << rows.front().email << " unblocked: mail to it is sent again\n";
    return kExitOk;
}

int runContact(CommandContext& app, const Args& args) {
    return runSubcommand(app, args, "contact",
                         {{"list", contactList}, {"show", contactShow}, {"unblock", contactUnblock}});
}

}  // namespace

std::vector<Command> queueCommands() {
    return {
        {"outbox", "list | show ID | retry ID|--parked | cancel ID", "list, show, retry or cancel outgoing mail",
         "list: the outbox, optionally of one --state (queued, sent, parked, cancelled) and --kind "
         "(id_mail, confirmation, ...). show: one mail's recipients, attempts, last server reply, "
         "headers and text (IDs masked). retry: queues a parked mail (or every parked mail with "
         "--parked) again, due now; the next deliver sends it. cancel: a queued or parked mail is "
         "never sent. --json prints one JSON document. "
         "Exit 65 for an unknown mail or one in a state the action does not apply to.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("state", "", "list: only mail in this state").argument("STATE"));
             s.addOption(Option("kind", "", "list: only mail of this kind").argument("KIND"));
             s.addOption(Option("parked", "", "retry: every parked mail"));
             s.addOption(Option("json", "", "list, show: print one JSON document"));
         },
         1, 2, runOutbox},
        {"inbound", "list | show ID | reprocess ID|--quarantined", "list, show or process again stored inbound mail",
         "list: stored mail, optionally of one --state (pending, done, ignored, quarantined, rejected, "
         "duplicate; ignored are done mails left unanswered for what they are: auto-replies, junk, list "
         "mail, our own mail, replies to no known case). show: one mail's state, classification, reason, "
         "headers and parser defects (IDs masked). reprocess: sets a quarantined, rejected or ignored mail "
         "(or every quarantined one with --quarantined) back to pending for the next process run, after a "
         "fix; nothing was done for such a mail, so nothing is done twice. --json prints one JSON document. "
         "Exit 65 for an unknown mail or one that was already acted on.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("state", "", "list: only mail in this state").argument("STATE"));
             s.addOption(Option("quarantined", "", "reprocess: every quarantined mail"));
             s.addOption(Option("json", "", "list, show: print one JSON document"));
         },
         1, 2, runInbound},
        {"contact", "list | show EMAIL | unblock EMAIL", "list or show contacts, unblock a bouncing address",
         "list: every contact, or those of --partner, or in one --state (ok, bouncing). show: the "
         "contact rows of one address, one per partner. unblock: an address marked bouncing gets mail "
         "again (after the partner fixed it). --json prints one JSON document. "
         "Exit 65 for an unknown address, or unblock of one that is not bouncing.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("state", "", "list: only contacts whose address is ok or bouncing").argument("STATE"));
             s.addOption(Option("partner", "", "list: only this partner's contacts").argument("ID"));
             s.addOption(Option("json", "", "list, show: print one JSON document"));
         },
         1, 2, runContact},
    };
}

}  // namespace sm::app
