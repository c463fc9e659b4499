// What a subcommand is and what it may use. The application frame
// (application.cpp) parses the options a command declares and hands it a
// CommandContext; the commands live in commands_*.cpp, a file per group, and are
// listed by allCommands().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <Poco/Logger.h>
#include <Poco/Util/OptionSet.h>

#include "app/application.h"
#include "app/config.h"
#include "app/progress.h"
#include "store/database.h"
#include "store/job_runs.h"

namespace sm::app {

/// A command's parsed arguments: options by full name ("" for flags) and the
/// positional arguments in order.
struct Args {
    std::map<std::string, std::string> options;
    std::vector<std::string> positional;
    bool has(const std::string& name) const { return options.count(name) > 0; }
    std::string get(const std::string& name, const std::string& def = "") const {
        auto it = options.find(name);
        return it == options.end() ? def : it->second;
    }
};

/// Thrown by a command for a usage mistake the option parser cannot see (exit 64).
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// An input file named on the command line that cannot be read (exit 66).
class InputError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Throws InputError when path is missing, a directory or unreadable, with the
/// reason in plain words ("PATH: is a directory, not a file").
void requireReadableFile(const std::string& path);

/// What an operator named (a mail, a case, a contract, an address) does not exist, or
/// is in a state the action does not apply to: runSubcommand() prints the message and
/// exits 65 (kExitDataErr).
class NotActionable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class CommandContext;

/// One subcommand of a command that has several ("outbox retry").
struct Subcommand {
    const char* name;
    int (*run)(CommandContext&, const Args&);
};

/// Runs the subcommand that args.positional[0] names. NotActionable from it becomes
/// "supportmail COMMAND SUB: what" on err() and exit 65; an unknown name throws
/// UsageError listing the known ones (exit 64). Anything else escapes to the frame.
int runSubcommand(CommandContext& app, const Args& args, const std::string& command,
                  const std::vector<Subcommand>& subcommands);

/// Throws UsageError for an option (other than --help) that subcommand sub does not
/// take: a command declares the union of its subcommands' options.
void requireOnly(const Args& args, const std::string& sub, const std::vector<std::string>& allowed);

/// What the application gives a command. settings() and database() load lazily
/// (a ConfigError or StoreError escaping a command becomes exit 78 or 69).
class CommandContext {
public:
    virtual ~CommandContext() = default;
    virtual config::Settings& settings() = 0;
    /// Opened and migrated on first use.
    virtual store::Database& database() = 0;
    virtual Poco::Logger& log() = 0;
    virtual std::ostream& out() = 0;
    virtual std::ostream& err() = 0;
    /// Installs the log channel, format and level the configuration names
    /// (logging.*; --verbose raises the level to information). Cheap when nothing
    /// changed since the last call.
    virtual void applyLogging() = 0;
    /// A progress bar for a long run (import, activate, process, deliver): drawn on
    /// stderr only when it is a terminal and --quiet was not given.
    virtual std::unique_ptr<TerminalProgress> progress(const std::string& label) = 0;
    /// Loads the configuration file again and, if it is valid, replaces settings()
    /// (and reopens database() if database.url changed). Throws ConfigError and keeps
    /// the old settings if the file is broken.
    virtual void reloadSettings() = 0;
};

struct Command {
    std::string name;
    std::string arguments;  ///< e.g. "FILE.csv"
    std::string summary;
    std::string description;
    std::function<void(Poco::Util::OptionSet&)> options;
    std::size_t minPositional = 0, maxPositional = 0;
    std::function<int(CommandContext&, const Args&)> run;
    /// The job lease the frame takes before run() and holds until it returns
    /// (lease_guard.h): "" = none. A run that finds it held by another live run
    /// exits 73 (kExitLeaseHeld) without running.
    std::string lease = "";  // (initialised: commands that omit it raise no -Wmissing-field-initializers)
};

/// Records one run of a job in job_runs: started at construction, finished with
/// the outcome and counts the job reports, or as failed if it ends by exception.
/// The row names the holder of the lease the frame took for this command, if any.
class JobRunRecord {
public:
    JobRunRecord(store::Database& db, const std::string& job);
    /// Set by the frame once it holds the command's lease (one command per process).
    static void setLeaseHolder(const std::string& holder);
    ~JobRunRecord();
    JobRunRecord(const JobRunRecord&) = delete;
    JobRunRecord& operator=(const JobRunRecord&) = delete;
    void finish(const std::string& outcome);
    std::int64_t id() const { return id_; }
    std::map<std::string, std::int64_t> counts;
    std::string error;

private:
    store::JobRuns runs_;
    std::string job_;
    std::int64_t id_;
    bool finished_ = false;
};

/// The job run an error ended before it finished (id 0: none): JobRunRecord's
/// destructor leaves it here for the frame, which alone knows the error's words.
struct UnfinishedRun {
    std::int64_t id = 0;
    std::string job;
    std::map<std::string, std::int64_t> counts;
};
UnfinishedRun& unfinishedRun();

// The command groups, one file each.
std::vector<Command> referenceDataCommands();  ///< commands_reference.cpp
std::vector<Command> outboundCommands();       ///< commands_outbound.cpp
std::vector<Command> inboundCommands();        ///< commands_inbound.cpp
std::vector<Command> opsCommands();            ///< commands_ops.cpp
std::vector<Command> expiryCommands();         ///< commands_expiry.cpp
std::vector<Command> caseCommands();           ///< commands_cases.cpp
std::vector<Command> doctorCommands();         ///< commands_doctor.cpp
std::vector<Command> serveCommands();          ///< commands_serve.cpp
std::vector<Command> copyCommands();           ///< commands_copy.cpp
std::vector<Command> queueCommands();          ///< commands_queue.cpp

/// True when the job needs no job lease on this engine: on PostgreSQL, process,
/// deliver, activate and expire claim their rows (any number of workers at once) and
/// fetch takes one lease per mailbox (commands_inbound.cpp). On SQLite (one writer)
/// every job runs under its job lease.
bool claimsItsRows(const std::string& job, store::Dialect dialect);

/// Runs cmd as the frame does: takes its lease (if any and claimsItsRows() is false;
/// exit 73 when another run holds it), runs it, and maps what escapes to an exit code
/// (printed to err(); a run interrupted by a lost lease exits 75).
int runCommandWithLease(CommandContext& app, const Command& cmd, const Args& args);

/// Every command, in the order --help lists them.
const std::vector<Command>& allCommands();

}  // namespace sm::app
