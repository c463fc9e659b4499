// activate and deliver: renewals to contracts and ID mail, the outbox to the world.
#include "domain/secure_random.h"
#include "jobs/activate.h"
#include "jobs/deliver.h"
#include "mail/templates.h"
#include "mail/transport.h"
#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

int runActivate(CommandContext& app, const Args& args) {
    app.applyLogging();
    jobs::ActivationOptions opts;
    opts.dryRun = args.has("dry-run");
    opts.partnerId = args.get("partner");
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    domain::SystemRandom random;
    std::unique_ptr<JobRunRecord> run;
    if (!opts.dryRun) run = std::make_unique<JobRunRecord>(app.database(), "activate");
    auto bar = app.progress("activate");
    if (!opts.dryRun) opts.progress = bar.get();
    auto report = jobs::activate(app.database(), settings, templates, random, opts, app.log());
    bar->finish();
    if (run) {
        run->counts = {{"activated", report.activated},
                       {"not_activated", static_cast<std::int64_t>(report.notActivated.size())},
                       {"overdue", static_cast<std::int64_t>(report.overdue.size())}};
        run->finish(report.notActivated.empty() ? "ok" : "incomplete");
    }
    for (const auto& line : report.dryRunLines) app.out() << line << "\n";
    for (const auto& p : report.notActivated)
        app.err() << "renewal " << p.renewalId << " (partner " << p.partnerId << ", " << p.benefit
                  << ") not activated: " << p.reason << "\n";
    for (const auto& p : report.overdue)
        app.err() << "OVERDUE: renewal " << p.renewalId << " (partner " << p.partnerId << ", " << p.benefit
                  << ") " << p.reason << "\n";
    app.out() << "activate: " << (opts.dryRun ? "dry run, would activate " : "") << report.activated
              << (opts.dryRun ? "" : " activated") << ", " << report.waitingForRequest
              << " action pack waiting for a request, " << report.notActivated.size() << " not activated, "
              << report.overdue.size() << " overdue\n";
    return report.notActivated.empty() ? kExitOk : kExitDataErr;
}

int runDeliver(CommandContext& app, const Args& args) {
    app.applyLogging();
    auto& settings = app.settings();
    int limit = 0;
    if (args.has("limit")) {
        const std::string given = Poco::trim(args.get("limit"));
        if (!Poco::NumberParser::tryParse(given, limit) || limit < 1 || given.find_first_not_of("0123456789") != std::string::npos)
            throw UsageError("--limit '" + args.get("limit") + "': expected a whole number of mails, 1 or more");
    }
    requireTransportPassword(settings);
    std::unique_ptr<mail::Transport> transport;
    try {
        transport = mail::makeTransport(settings.transport);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(settings.configFile + ": transport.url: " + e.what());
    }
    const std::string where = transport->describe();
    // The transport made above is the first connection; each further one is made alike.
    jobs::NewConnection newConnection = [&]() -> std::unique_ptr<mail::Transport> {
        if (transport) return std::move(transport);
        return mail::makeTransport(settings.transport);
    };
    JobRunRecord run(app.database(), "deliver");
    auto bar = app.progress("deliver");
    mail::TemplateSet templates(settings.templatesDir);
    const jobs::OutboxRenderer renderer(app.database(), settings, templates);
    auto report =
        jobs::deliver(app.database(), settings.delivery, newConnection, app.log(), limit, bar.get(), &renderer);
    bar->finish();
    run.counts = {{"sent", report.sent}, {"retried", report.retried}, {"parked", report.parked}};
    if (report.serverUnavailable) run.error = report.lastError;
    run.finish(report.serverUnavailable ? "server_unavailable" : "ok");
    app.out() << "deliver: " << report.sent << " sent, " << report.retried << " to retry, " << report.parked
              << " parked\n";
    if (report.serverUnavailable) {
        app.err() << "deliver: " << where << " unavailable: " << report.lastError
                  << "; the rest stays queued\n";
        return kExitTempFail;
    }
    return kExitOk;
}

}  // namespace

std::vector<Command> outboundCommands() {
    return {
        {"activate", "", "activate pending renewals and queue the ID mails",
         "Gold, silver, SCS, ASfP and competency-kit renewals are activated; Action Pack renewals\n"
         "only with --partner. Reports renewals pending beyond the four-week promise.\n"
         "Exit 65 when a renewal could not be activated (the reason is printed).",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("dry-run", "n", "print what would be activated; change nothing"));
             s.addOption(Option("partner", "p", "only this partner (also activates its Action Pack renewals)")
                             .argument("ID"));
         },
         0, 0, runActivate, "activate"},
        {"deliver", "", "send due outbox mail through the configured transport",
         "Sends over delivery.connections reused SMTP connections at once (or into the spool\n"
         "directory). 4xx and connection errors are retried later with back-off; 5xx replies park\n"
         "the mail with the reply.\n"
         "Exit 75 when the server could not be reached (the mail stays queued).",
         [](Poco::Util::OptionSet& s) { s.addOption(Option("limit", "", "send at most N mails").argument("N")); }, 0, 0,
         runDeliver, "deliver"},
    };
}

}  // namespace sm::app
