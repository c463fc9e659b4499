// import-partners and import-renewals: the CRM's files into the store.
#include <Poco/File.h>

#include "jobs/import_reference.h"
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

void printProblems(std::ostream& err, const std::vector<jobs::LineProblem>& problems) {
    for (const auto& p : problems)
        err << "line " << p.line << (p.field.empty() ? "" : ", " + p.field) << ": " << p.reason << "\n";
}

int runImport(CommandContext& app, const Args& args, bool partners) {
    app.applyLogging();
    const std::string& file = args.positional.at(0);
    requireReadableFile(file);  // exit 66: missing, a directory, unreadable
    bool skip = args.has("skip-bad-lines");
    JobRunRecord run(app.database(), partners ? "import-partners" : "import-renewals");
    auto bar = app.progress(partners ? "import-partners" : "import-renewals");
    auto report = partners ? jobs::importPartners(app.database(), app.settings(), file, skip, bar.get())
                           : jobs::importRenewals(app.database(), app.settings(), file, skip, bar.get());
    bar->finish();
    printProblems(app.err(), report.problems);
    app.out() << (partners ? "import-partners: " : "import-renewals: ") << file << ": " << report.summary() << "\n";
    run.counts = {{"lines", report.lines}, {"inserted", report.inserted}, {"updated", report.updated},
                  {"problems", static_cast<std::int64_t>(report.problems.size())}};
    if (!report.problems.empty() && !skip) {
        app.err() << file << ": " << report.problems.size()
                  << " problem(s); nothing was loaded (fix the file, or use --skip-bad-lines)\n";
        run.error = std::to_string(report.problems.size()) + " bad lines";
        run.finish("rejected");
        return kExitDataErr;
    }
    run.finish("ok");
    return kExitOk;
}

}  // namespace

std::vector<Command> referenceDataCommands() {
    return {
        {"import-partners", "FILE.csv", "load partners, locations and contacts from the CRM's CSV file",
         "Columns: partner_id, partner_name, membership, hq_country, contact_email, contact_name,\n"
         "contact_role, contact_country, contact_language [, location_id, location_name, location_country].\n"
         "One line per contact. A file with errors loads nothing (exit 65) unless --skip-bad-lines.\n"
         "Loading the same file twice changes nothing.",
         [](Poco::Util::OptionSet& s) { s.addOption(Option("skip-bad-lines", "", "load the good lines of a file with errors")); },
         1, 1, [](CommandContext& app, const Args& a) { return runImport(app, a, true); }, "import-partners"},
        {"import-renewals", "FILE.csv", "load membership renewals from the CRM's CSV file",
         "Columns: partner_id, benefit (gold, silver, action_pack, scs, asfp, competency_kit),\n"
         "renewal_date (YYYY-MM-DD) [, location_id for competency_kit].\n"
         "A file with errors loads nothing (exit 65) unless --skip-bad-lines. Idempotent.",
         [](Poco::Util::OptionSet& s) { s.addOption(Option("skip-bad-lines", "", "load the good lines of a file with errors")); },
         1, 1, [](CommandContext& app, const Args& a) { return runImport(app, a, false); }, "import-renewals"},
    };
}

}  // namespace sm::app
