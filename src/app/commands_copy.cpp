// copy-database: moving a site from its SQLite file to PostgreSQL (store/copy.h).
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"
#include "store/copy.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

int runCopyDatabase(CommandContext& app, const Args& args) {
    app.applyLogging();
    const std::string to = args.get("to");
    if (to.rfind("postgresql:", 0) != 0) throw UsageError("--to postgresql:CONNINFO is required");
    auto& from = app.database();
    auto target = store::Database::open(to);
    try {
        auto report = store::copyDatabase(from, *target);
        std::int64_t rows = 0, added = 0;
        for (const auto& t : report) {
            app.out() << t.table << ": " << t.sourceRows << " rows, " << t.added << " copied now, " << t.targetRows
                      << " in the target\n";
            rows += t.sourceRows;
            added += t.added;
        }
        app.out() << "copy-database: " << report.size() << " tables, " << rows << " rows, " << added
                  << " copied now; counts match (" << from.describe() << " -> " << target->describe() << ")\n";
        return kExitOk;
    } catch (const store::CopyError& e) {
        app.err() << "supportmail copy-database: " << e.what() << "\n";
        return kExitDataErr;
    }
}

}  // namespace

std::vector<Command> copyCommands() {
    return {
        {"copy-database", "", "copy everything from the configured database into an empty PostgreSQL one",
         "For a site moving from SQLite to PostgreSQL: migrates the target, then copies every "
         "table (ids kept, job leases left behind) in one transaction and compares each table's "
         "row count. Safe to run again: rows already there are kept, only missing ones are added. "
         "Stop every job (cron, serve) while it runs; afterwards point database.url at the target. "
         "Exit 65 when a count differs (nothing is copied), 69 when a database is unavailable.",
         [](Poco::Util::OptionSet& s) {
             s.addOption(Option("to", "", "the target, postgresql:CONNINFO").argument("URL"));
         },
         0, 0, runCopyDatabase},
    };
}

}  // namespace sm::app
