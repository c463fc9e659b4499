// fetch, process and inspect: inbound mail to incidents and replies.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

#include "jobs/fetch.h"
#include "jobs/process.h"
#include "mail/inspect.h"
#include "mail/mime_parser.h"
#include "mail/templates.h"
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"
#include "app/lease_guard.h"
#include "app/listing.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

int runFetch(CommandContext& app, const Args&) {
    app.applyLogging();
    auto& settings = app.settings();
    if (settings.inbound.empty())
        throw ConfigError(settings.configFile + ": no inbound.NAME.url is configured: nothing to fetch from");
    requireInboundPasswords(settings);
    // On PostgreSQL several hosts run fetch at once: each mailbox is read by one run at a
    // time under its own lease ("fetch:NAME"); mailboxes another run holds are left to it.
    // (On SQLite the frame took the job's lease for all of them.)
    std::vector<std::unique_ptr<LeaseGuard>> mailboxLeases;
    config::Settings mine;
    const config::Settings* fetchSettings = &settings;
    if (claimsItsRows("fetch", app.database().dialect())) {
        mine = settings;
        mine.inbound.clear();
        for (const auto& in : settings.inbound) {
            auto lease = std::make_unique<LeaseGuard>(settings.databaseUrl, "fetch:" + in.name, app.log(),
                                                      LeaseGuard::kTtlSeconds, &app.database());
            if (!lease->acquired()) {
                app.log().information("fetch: inbound." + in.name + " is being read by " +
                                      (lease->heldBy() ? lease->heldBy()->holder : std::string("another run")) +
                                      "; skipped");
                continue;
            }
            mine.inbound.push_back(in);
            mailboxLeases.push_back(std::move(lease));
        }
        fetchSettings = &mine;
    }
    JobRunRecord run(app.database(), "fetch");
    auto report = jobs::fetch(app.database(), *fetchSettings, app.log());
    run.counts = {{"fetched", report.fetched}, {"known", report.known}, {"too_large", report.tooLarge}};
    for (const auto& e : report.errors) app.err() << "fetch: " << e << "\n";
    app.out() << "fetch: " << report.fetched << " new, " << report.known << " already stored, " << report.tooLarge
              << " too large\n";
    if (!report.errors.empty()) run.error = report.errors.front();
    if (report.permanentFailure) {
        run.finish("failed");
        return kExitUnavailable;
    }
    if (report.temporaryFailure) {
        run.finish("server_unavailable");
        return kExitTempFail;
    }
    run.finish("ok");
    return kExitOk;
}

/// process --dry-run: each pending mail, what it would become and what it would be
/// answered, from the real handlers in a transaction that is rolled back.
int runProcessDryRun(CommandContext& app, const Args& args) {
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    auto& db = app.database();
    const auto outcomes = jobs::processDryRun(db, settings, templates);
    Scrubber scrub(db);
    if (args.has("json")) {
        auto root = jsonObject();
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const auto& o : outcomes) {
            auto j = jsonObject();
            j->set("inbound_id", o.inboundId);
            j->set("sender", o.sender);
            j->set("subject", scrub(o.subject));
            j->set("state", o.state);
            j->set("classification", o.classification);
            j->set("reason", scrub(o.reason));
            Poco::JSON::Array::Ptr answers = new Poco::JSON::Array;
            for (const auto& a : o.answers) {
                auto aj = jsonObject();
                aj->set("kind", a.kind);
                Poco::JSON::Array::Ptr to = new Poco::JSON::Array;
                for (const auto& r : a.recipients) to->add(r);
                aj->set("recipients", to);
                aj->set("subject", scrub(a.subject));
                answers->add(aj);
            }
            j->set("answers", answers);
            j->set("error", o.error);
            list->add(j);
        }
        root->set("dry_run", true);
        root->set("messages", list);
        root->set("count", outcomes.size());
        printJson(app.out(), root);
        return kExitOk;
    }
    std::ostringstream out;
    for (const auto& o : outcomes) {
        out << "inbound #" << o.inboundId << " from " << orDash(o.sender) << " \"" << o.subject << "\"\n";
        if (!o.error.empty()) {
            out << "  would fail: " << o.error << "\n";
            continue;
        }
        out << "  would be " << o.state << (o.classification.empty() ? "" : " as " + o.classification) << ": "
            << orDash(o.reason) << "\n";
        if (o.answers.empty()) out << "  no answer\n";
        for (const auto& a : o.answers) {
            std::string to;
            for (const auto& r : a.recipients) to += (to.empty() ? "" : ", ") + r;
            out << "  would queue " << a.kind << " to " << to << ": \"" << a.subject << "\"\n";
        }
    }
    out << "process --dry-run: " << outcomes.size() << " pending " << (outcomes.size() == 1 ? "mail" : "mails")
        << "; nothing was changed\n";
    app.out() << scrub(out.str());
    return kExitOk;
}

int runProcess(CommandContext& app, const Args& args) {
    if (args.has("dry-run")) return runProcessDryRun(app, args);
    if (args.has("json")) throw UsageError("--json applies to --dry-run only");
    app.applyLogging();
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    JobRunRecord run(app.database(), "process");
    auto bar = app.progress("process");
    auto r = jobs::process(app.database(), settings, templates, app.log(), Poco::Timestamp(), bar.get());
    bar->finish();
    run.counts = {{"processed", r.processed}, {"accepted", r.accepted},     {"refused", r.refused},
                  {"follow_ups", r.followUps}, {"bounces", r.bounces},      {"ignored", r.ignored},
                  {"quarantined", r.quarantined}, {"duplicates", r.duplicates}, {"rate_limited", r.rateLimited}};
    run.finish("ok");
    app.out() << "process: " << r.processed << " messages: " << r.accepted << " new cases, " << r.refused
              << " refused, " << r.followUps << " follow-ups, " << r.bounces << " bounces, " << r.ignored
              << " not answered, " << r.quarantined << " quarantined, " << r.duplicates << " duplicates\n";
    return kExitOk;
}

int runInspect(CommandContext& app, const Args& args) {
    const std::string& file = args.positional.at(0);
    // The same limit as fetch: a file over it is refused before it is read (a
    // multi-GB file would otherwise be held whole). Without a configuration file
    // inspect still works, with the default limit.
    std::int64_t limit = config::Settings().process.maxMessageBytes;
    try {
        limit = app.settings().process.maxMessageBytes;
    } catch (const ConfigError& e) {
        // No configuration file: the default limit, quietly (inspect needs nothing
        // else). A broken one is said, not ignored.
        if (std::string_view(e.what()).rfind("no configuration file", 0) != 0)
            app.err() << "supportmail inspect: " << e.what() << "; using the default limit of " << limit
                      << " bytes\n";
    }
    requireReadableFile(file);  // exit 66: missing, a directory, unreadable
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) throw InputError(file + ": cannot be read");
    const std::streamoff size = in.tellg();
    if (size > limit) {
        app.err() << "supportmail inspect: " << file << ": " << size
                  << " bytes, more than process.max_message_bytes (" << limit
                  << "): fetch records such a mail from its header alone and answers its sender; not inspected\n";
        return kExitDataErr;
    }
    in.seekg(0);
    std::string raw;
    raw.resize(static_cast<std::size_t>(std::max<std::streamoff>(size, 0)));
    in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
    raw.resize(static_cast<std::size_t>(in.gcount()));
    if (!mail::looksLikeMail(raw)) {
        app.err() << "supportmail inspect: " << file << ": not a mail message (no header fields at the top)\n";
        return kExitDataErr;
    }
    mail::ParsedMail parsed;
    try {
        parsed = mail::parseMail(raw);
    } catch (const mail::MailRejected& e) {
        parsed.defects.push_back(std::string("rejected: ") + e.what());
    }
    app.out() << mail::inspectJson(parsed, args.has("show-ids")) << "\n";
    return kExitOk;
}

}  // namespace

std::vector<Command> inboundCommands() {
    return {
        {"fetch", "", "store new mail from the configured mailboxes (inbound.NAME.*)",
         "IMAP (imap:// with STARTTLS, imaps://) or Maildir. Each message is stored durably and\n"
         "committed before it is marked \\Seen or moved on the server. Exit 75 when a server\n"
         "could not be reached, 69 when a login or mailbox failed.",
         nullptr, 0, 0, runFetch, "fetch"},
        {"process", "", "turn stored mail into incidents, follow-ups and replies",
         "One transaction per message: the incident, the ledger debit, the sender link and the\n"
         "reply commit together with the message's end state. Bounces mark contacts as bouncing;\n"
         "auto-replies, list mail and our own mail are never answered.\n"
         "--dry-run shows what each pending mail would become and the answer it would get, with the\n"
         "real rules and templates, and changes nothing (to try a configuration change on the real\n"
         "queue); --json prints that as one JSON document.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("dry-run", "n", "show what each pending mail would become; change nothing"));
             s.addOption(Option("json", "", "with --dry-run: print one JSON document"));
         },
         0, 0, runProcess, "process"},
        {"inspect", "FILE.eml", "print what the parser and the classifier make of one mail, as JSON",
         "Exit 0 for any mail that could be read, broken or not (its defects are listed); "
         "65 for a file that is not mail at all or is larger than process.max_message_bytes "
         "(the configuration's, or the default 25 MB without one); 66 for a file that is missing, "
         "unreadable or a directory. Access IDs and Contract IDs in the subject, the text and the "
         "fields are masked (0037xxxxxx), and so is any ten-digit number there; --show-ids prints "
         "them in clear, for the operator who must read what a partner typed.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("show-ids", "", "print Access IDs and Contract IDs in clear"));
         },
         1, 1, runInspect},
    };
}

}  // namespace sm::app
