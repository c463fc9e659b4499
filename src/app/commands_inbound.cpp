// fetch, process and inspect: inbound mail to incidents and replies.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <string_view>

#include "jobs/fetch.h"
#include "jobs/process.h"
#include "mail/inspect.h"
#include "mail/mime_parser.h"
#include "mail/templates.h"
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"

namespace sm::app {
namespace {

int runFetch(CommandContext& app, const Args&) {
    app.applyLogging();
    auto& settings = app.settings();
    if (settings.inbound.empty())
        throw ConfigError(settings.configFile + ": no inbound.NAME.url is configured: nothing to fetch from");
    requireInboundPasswords(settings);
    JobRunRecord run(app.database(), "fetch");
    auto report = jobs::fetch(app.database(), settings, app.log());
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

int runProcess(CommandContext& app, const Args&) {
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
    std::int64_t limit = Settings().process.maxMessageBytes;
    try {
        limit = app.settings().process.maxMessageBytes;
    } catch (const ConfigError& e) {
        // No configuration file: the default limit, quietly (inspect needs nothing
        // else). A broken one is said, not ignored.
        if (std::string_view(e.what()).rfind("no configuration file", 0) != 0)
            app.err() << "supportmail inspect: " << e.what() << "; using the default limit of " << limit
                      << " bytes\n";
    }
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) {
        app.err() << "supportmail inspect: " << file << ": cannot read the file\n";
        return kExitDataErr;
    }
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
    app.out() << mail::inspectJson(parsed) << "\n";
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
         "auto-replies, list mail and our own mail are never answered.",
         nullptr, 0, 0, runProcess, "process"},
        {"inspect", "FILE.eml", "print what the parser and the classifier make of one mail, as JSON",
         "Exit 0 for any mail that could be read, broken or not (its defects are listed);\n"
         "65 for a file that is not mail at all or is larger than process.max_message_bytes\n"
         "(the configuration's, or the default 25 MB without one).",
         nullptr, 1, 1, runInspect},
    };
}

}  // namespace sm::app
