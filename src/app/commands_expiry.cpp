// expire: contracts past their validity, the write-off of their remainder, and the
// reminders to the primary contacts before (DOMAIN.md flow 9).
#include "jobs/expire.h"
#include "mail/templates.h"
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

int runExpire(CommandContext& app, const Args& args) {
    app.applyLogging();
    const bool dryRun = args.has("dry-run");
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    std::unique_ptr<JobRunRecord> run;
    if (!dryRun) run = std::make_unique<JobRunRecord>(app.database(), "expire");
    auto report = jobs::expire(app.database(), settings, templates, app.log(), Poco::Timestamp(), dryRun);
    if (run) {
        run->counts = {{"expired", report.expired},
                       {"written_off", report.writtenOff},
                       {"incidents_written_off", report.incidentsWrittenOff},
                       {"reminders", report.remindersQueued},
                       {"expiry_notices", report.noticesQueued},
                       {"reminders_skipped", report.remindersSkipped},
                       {"problems", static_cast<std::int64_t>(report.problems.size())}};
        run->finish(report.problems.empty() ? "ok" : "incomplete");
    }
    for (const auto& line : report.dryRunLines) app.out() << line << "\n";
    for (const auto& p : report.problems) app.err() << p << "\n";
    app.out() << "expire: " << (dryRun ? "dry run, would do " : "") << report.expired << " expired, "
              << report.writtenOff << " written off (" << report.incidentsWrittenOff << " incidents), "
              << report.noticesQueued << " expiry notices queued, " << report.remindersQueued << " reminders queued\n";
    return report.problems.empty() ? kExitOk : kExitDataErr;
}

}  // namespace

std::vector<Command> expiryCommands() {
    return {
        {"expire", "", "expire contracts past their validity and queue the expiry reminders",
         "Active contracts whose expiry date has come become expired; their remaining incidents "
         "are written off in the ledger, and later requests with them are refused. The primary "
         "contact is reminded expiry.reminder_days before (default 30, 7), each reminder once; "
         "when several are due, only the most urgent is sent. Run it daily. "
         "Exit 65 when a reminder could not be sent (no primary contact; the reason is printed).",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("dry-run", "n", "print what would be done; change nothing"));
         },
         0, 0, runExpire, "expire"},
    };
}

}  // namespace sm::app
