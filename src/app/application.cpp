#include "app/application.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <Poco/AutoPtr.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>
#include <Poco/String.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include "app/command.h"
#include "app/config.h"
#include "io/csv.h"
#include "app/lease_guard.h"
#include "app/logging.h"
#include "app/progress.h"
#include "mail/templates.h"
#include "store/database.h"

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace sm::app {
namespace {

/// "--NAME: what is wrong": the one wording for a bad option, before or after the
/// command (POCO's own texts differ by exception and speak of "option" objects).
std::string optionProblem(const Poco::Util::OptionException& e) {
    // POCO's message starts with the option as given: "limit requires N", "bogus".
    std::string name = Poco::trim(e.message());
    name = name.substr(0, name.find_first_of(": ="));
    if (!name.empty() && name[0] != '-') name = (name.size() == 1 ? "-" : "--") + name;
    if (dynamic_cast<const Poco::Util::UnknownOptionException*>(&e)) return name + ": unknown option";
    if (dynamic_cast<const Poco::Util::AmbiguousOptionException*>(&e)) return name + ": ambiguous option";
    if (dynamic_cast<const Poco::Util::MissingArgumentException*>(&e)) return name + ": needs a value";
    if (dynamic_cast<const Poco::Util::UnexpectedArgumentException*>(&e)) return name + ": takes no value";
    if (dynamic_cast<const Poco::Util::DuplicateOptionException*>(&e)) return name + ": given twice";
    if (dynamic_cast<const Poco::Util::MissingOptionException*>(&e)) return name + ": required";
    return name + ": " + e.displayText();
}

class SupportmailApp : public Poco::Util::ServerApplication, public CommandContext {
public:
    SupportmailApp(std::vector<std::string> commandArgs) : commandArgs_(std::move(commandArgs)) {
        setUnixOptions(true);
    }

    // ---- what commands use ----
    config::Settings& settings() override {
        if (!settings_) settings_ = std::make_unique<config::Settings>(loadSettings(configPath()));
        return *settings_;
    }
    store::Database& database() override {
        if (!db_) {
            db_ = store::Database::open(settings().databaseUrl);
            db_->migrate();
        }
        return *db_;
    }
    Poco::Logger& log() override { return Poco::Logger::get("supportmail"); }
    std::ostream& out() override {
        if (quiet()) return discard_;
        TerminalProgress::clearLine();
        return std::cout;
    }
    std::ostream& err() override {
        TerminalProgress::clearLine();
        return std::cerr;
    }
    void applyLogging() override {
        const auto& s = settings().log;
        const bool verbose = config().hasProperty("supportmail.verbose");
        if (appliedLogging_ && appliedLogging_->first == s && appliedLogging_->second == verbose) return;
        configureLogging(s, verbose, settings().configFile);
        appliedLogging_ = std::make_pair(s, verbose);
    }
    std::unique_ptr<TerminalProgress> progress(const std::string& label) override {
        return std::make_unique<TerminalProgress>(label, !quiet() && TerminalProgress::stderrIsTerminal());
    }
    bool quiet() { return config().hasProperty("supportmail.quiet"); }

protected:
    void initialize(Application& self) override {
        ServerApplication::initialize(self);
        configureDefaultLogging();
    }

    void defineOptions(OptionSet& options) override {
        // ServerApplication's daemon options (its callbacks kept), described in our words.
        OptionSet daemonOptions;
        ServerApplication::defineOptions(daemonOptions);
        static const std::map<std::string, std::string> ours = {
            {"daemon", "detach and run in the background (serve; systemd needs no --daemon)"},
            {"umask", "the daemon's umask, octal (027)"},
            {"pidfile", "write the daemon's process id to this file"},
        };
        for (const auto& o : daemonOptions) {
            Option copy(o);
            auto it = ours.find(o.fullName());
            if (it != ours.end()) copy.description(it->second);
            options.addOption(copy);
        }
        options.addOption(Option("help", "h", "show this help, or a command's help with COMMAND --help")
                              .required(false)
                              .repeatable(false)
                              .callback(Poco::Util::OptionCallback<SupportmailApp>(this, &SupportmailApp::onHelp)));
        options.addOption(Option("config", "c", "configuration file (default: $SUPPORTMAIL_CONFIG, "
                                                "./config/supportmail.properties, /etc/supportmail/supportmail.properties)")
                              .required(false)
                              .repeatable(false)
                              .argument("FILE")
                              .binding("supportmail.config"));
        options.addOption(Option("verbose", "v", "log each step (information level)")
                              .required(false)
                              .repeatable(false)
                              .binding("supportmail.verbose"));
        options.addOption(Option("quiet", "q", "print nothing on stdout and draw no progress bar (for cron: "
                                               "errors still go to stderr, the exit code tells)")
                              .required(false)
                              .repeatable(false)
                              .binding("supportmail.quiet"));
    }

    void onHelp(const std::string&, const std::string&) {
        helpRequested_ = true;
        stopOptionsProcessing();
    }

    int main(const ArgVec&) override {
        if (helpRequested_ || commandArgs_.empty()) {
            printGlobalHelp();
            return commandArgs_.empty() && !helpRequested_ ? kExitUsage : kExitOk;
        }
        const std::string name = commandArgs_.front();
        const Command* cmd = nullptr;
        for (const auto& c : allCommands())
            if (c.name == name) cmd = &c;
        if (!cmd) {
            err() << "supportmail: " << name << ": unknown command '" << name << "' (see supportmail --help)\n";
            return kExitUsage;
        }
        Args args;
        OptionSet set;
        set.addOption(Option("help", "h", "show this command's help"));
        if (cmd->options) cmd->options(set);
        try {
            Poco::Util::OptionProcessor proc(set);
            proc.setUnixStyle(true);
            for (std::size_t i = 1; i < commandArgs_.size(); ++i) {
                std::string optName, value;
                if (proc.process(commandArgs_[i], optName, value)) {
                    if (!optName.empty()) args.options[optName] = value;
                } else {
                    args.positional.push_back(commandArgs_[i]);
                }
            }
            proc.checkRequired();
        } catch (const Poco::Util::OptionException& e) {
            err() << "supportmail " << name << ": " << optionProblem(e) << " (see supportmail " << name << " --help)\n";
            return kExitUsage;
        }
        if (args.has("help")) {
            printCommandHelp(*cmd, set);
            return kExitOk;
        }
        if (args.positional.size() < cmd->minPositional || args.positional.size() > cmd->maxPositional) {
            err() << "supportmail " << name << ": expected " << (cmd->arguments.empty() ? "no arguments" : cmd->arguments)
                  << " (see supportmail " << name << " --help)\n";
            return kExitUsage;
        }
        if (config().hasProperty("supportmail.verbose")) Poco::Logger::setLevel("", Poco::Message::PRIO_INFORMATION);
        return runCommandWithLease(*this, *cmd, args);
    }

    void reloadSettings() override {
        auto fresh = std::make_unique<config::Settings>(loadSettings(configPath()));  // throws: the old ones stay
        if (db_ && (!settings_ || fresh->databaseUrl != settings_->databaseUrl)) db_.reset();
        settings_ = std::move(fresh);
    }

private:
    std::string configPath() {
        std::string path = config().getString("supportmail.config", "");
        if (path.empty())
            if (const char* env = std::getenv("SUPPORTMAIL_CONFIG")) path = env;
        if (path.empty()) {
            for (const char* candidate : {"config/supportmail.properties", "/etc/supportmail/supportmail.properties"})
                if (Poco::File(candidate).exists()) {
                    path = candidate;
                    break;
                }
        }
        if (path.empty())
            throw ConfigError("no configuration file: give --config FILE or set SUPPORTMAIL_CONFIG");
        return path;
    }

    void printGlobalHelp() {
        Poco::Util::HelpFormatter help(options());
        help.setCommand("supportmail");
        help.setUsage("[--config FILE] COMMAND [options] [args]");
        help.setHeader("Partner support contracts by mail: activation, ID delivery, incident requests.");
        help.setUnixStyle(true);
        help.format(std::cout);
        // Printed as is: HelpFormatter would re-wrap the table.
        std::cout << "\nCommands:\n";
        for (const auto& c : allCommands()) {
            std::cout << "  " << c.name;
            for (std::size_t i = c.name.size(); i < 18; ++i) std::cout << ' ';
            std::cout << c.summary << "\n";
        }
        std::cout << "\nExit codes: 0 ok, 64 usage, 65 bad input data, 66 input file missing or unreadable,\n"
                     "69 server or database unavailable, "
                     "70 internal error, 73 another run of this job holds its lease (nothing done),\n"
                     "75 temporary failure (try again later), 78 configuration error.\n"
                     "'supportmail COMMAND --help' describes a command.\n";
    }

    void printCommandHelp(const Command& cmd, const OptionSet& set) {
        // The usage line as written (HelpFormatter would wrap it at a hyphen inside
        // "--non-decrement"), then the summary, the options and the description,
        // each wrapped once by the formatter: line breaks written into a description
        // would be wrapped again and break lines in odd places.
        // One line per form of a command with subcommands ("list | show ID").
        std::string forms = cmd.arguments, lead = "usage: ";
        const bool several = forms.find(" | ") != std::string::npos;  // the forms name their options
        do {
            auto bar = forms.find(" | ");
            std::cout << lead << "supportmail " << cmd.name << (several ? "" : " [options]")
                      << (forms.empty() ? "" : " " + forms.substr(0, bar)) << "\n";
            forms = bar == std::string::npos ? "" : forms.substr(bar + 3);
            lead = "       ";
        } while (!forms.empty());
        std::cout << "\n";
        CommandHelp help(set);
        help.print(std::cout, cmd.summary, cmd.description);
    }

    /// HelpFormatter's option table and word wrapping, without its usage line.
    class CommandHelp : public Poco::Util::HelpFormatter {
    public:
        explicit CommandHelp(const OptionSet& set) : HelpFormatter(set) { setUnixStyle(true); }
        void print(std::ostream& out, const std::string& summary, std::string description) const {
            formatText(out, summary, 0);
            out << "\n\n";
            formatOptions(out);
            for (auto& ch : description)
                if (ch == '\n') ch = ' ';
            out << "\n";
            formatText(out, description, 0);
            out << "\n";
        }
    };

    std::vector<std::string> commandArgs_;
    bool helpRequested_ = false;
    std::unique_ptr<config::Settings> settings_;
    std::unique_ptr<store::Database> db_;
    std::optional<std::pair<config::LogSettings, bool>> appliedLogging_;  ///< what applyLogging() installed, with --verbose
    std::ostream discard_{nullptr};  // no buffer: every write is dropped
};

}  // namespace

namespace {
std::string& leaseHolder() {
    static std::string holder;
    return holder;
}
}  // namespace

UnfinishedRun& unfinishedRun() {
    static UnfinishedRun run;
    return run;
}


void JobRunRecord::setLeaseHolder(const std::string& holder) { leaseHolder() = holder; }

JobRunRecord::JobRunRecord(store::Database& db, const std::string& job)
    : runs_(db), job_(job), id_(runs_.start(job, leaseHolder())) {
    setCurrentRun(id_, job_);
}

JobRunRecord::~JobRunRecord() {
    if (!finished_) {
        try {
            if (!error.empty()) {
                runs_.finish(id_, "failed", counts, error);
                Poco::Logger::get("supportmail").error(job_ + " failed: " + error);
            } else {
                // Left by an error on its way to the frame, which knows what it was:
                // failed() writes the words into this row and the log.
                runs_.finish(id_, "failed", counts, "stopped by an error before it finished");
                unfinishedRun() = {id_, job_, counts};
            }
        } catch (...) {
        }
    }
}

void JobRunRecord::finish(const std::string& outcome) {
    runs_.finish(id_, outcome, counts, error);
    finished_ = true;
    // The run's one log line: information when all went well (quiet under cron at
    // the default level), a warning otherwise.
    std::string line = job_ + " finished: " + outcome;
    std::string sep = "; ";
    for (const auto& [k, v] : counts) {
        line += sep + k + " " + std::to_string(v);
        sep = ", ";
    }
    if (!error.empty()) line += "; " + error;
    auto& log = Poco::Logger::get("supportmail");
    if (outcome == "ok") log.information(line);
    else log.warning(line);
}

namespace {

std::vector<Command> frameCommands() {
    return {
        {"version", "", "print the version", "", nullptr, 0, 0,
         [](CommandContext& app, const Args&) {
             app.out() << "supportmail " << SUPPORTMAIL_VERSION << "\n";
             return kExitOk;
         }},
    };
}

}  // namespace

const std::vector<Command>& allCommands() {
    static const std::vector<Command> all = [] {
        std::vector<Command> v;
        for (auto group : {referenceDataCommands, outboundCommands, inboundCommands, expiryCommands, caseCommands, queueCommands, opsCommands, serveCommands, copyCommands, doctorCommands, frameCommands})
            for (auto& c : group()) v.push_back(std::move(c));
        return v;
    }();
    return all;
}


bool claimsItsRows(const std::string& job, store::Dialect dialect) {
    return dialect == store::Dialect::PostgreSQL &&
           (job == "process" || job == "deliver" || job == "activate" || job == "expire" || job == "fetch");
}

int runSubcommand(CommandContext& app, const Args& args, const std::string& command,
                  const std::vector<Subcommand>& subcommands) {
    const std::string sub = args.positional.at(0);
    std::string known;
    for (const auto& s : subcommands) {
        if (sub == s.name) {
            try {
                return s.run(app, args);
            } catch (const NotActionable& e) {
                app.err() << "supportmail " << command << " " << sub << ": " << e.what() << "\n";
                return kExitDataErr;
            }
        }
        known += (known.empty() ? "" : &s == &subcommands.back() ? " or " : ", ") + std::string(s.name);
    }
    throw UsageError("unknown subcommand '" + sub + "': expected " + known);
}

void requireOnly(const Args& args, const std::string& sub, const std::vector<std::string>& allowed) {
    for (const auto& [name, value] : args.options) {
        (void)value;
        if (name == "help" || std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
        throw UsageError("--" + name + " does not apply to '" + sub + "'");
    }
}

void requireReadableFile(const std::string& path) {
    Poco::File f(path);
    try {
        if (!f.exists()) throw InputError(path + ": no such file");
        if (f.isDirectory()) throw InputError(path + ": is a directory, not a file");
        if (!f.canRead()) throw InputError(path + ": cannot be read (permission denied)");
    } catch (const Poco::Exception& e) {
        throw InputError(path + ": cannot be read (" + e.displayText() + ")");
    }
}

namespace {
/// The one form of an error: "supportmail COMMAND: what: why" on stderr and, for a
/// job (a command with a lease, run by cron), the same words in the log.
int failed(CommandContext& app, const Command& cmd, int code, const std::string& message) {
    app.err() << "supportmail " << cmd.name << ": " << message << "\n";
    auto& run = unfinishedRun();
    if (run.id != 0) {  // a job run this error ended: its row and the log get the reason
        try {
            store::JobRuns(app.database()).finish(run.id, "failed", run.counts, message);
            app.log().error(run.job + " failed: " + message);
        } catch (...) {
            // the database or the log is what failed: stderr has the reason
        }
        run = {};
    }
    return code;
}
}  // namespace

int runCommandWithLease(CommandContext& app, const Command& cmd, const Args& args) {
    // Log lines name the job from here until the lease is released (after the run).
    struct RunScope {
        explicit RunScope(const std::string& job) {
            if (!job.empty()) setCurrentRun(0, job);
        }
        ~RunScope() { clearCurrentRun(); }
    } scope(cmd.lease);
    try {
        std::unique_ptr<LeaseGuard> lease;
        if (!cmd.lease.empty()) {
            app.applyLogging();  // the configured log gets the lease's lines too
            app.database();  // configuration, then the schema with the leases table, first
        }
        if (!cmd.lease.empty() && !claimsItsRows(cmd.lease, app.database().dialect())) {
            // A run that loses its lease is stopped: its open transaction is rolled back.
            lease = std::make_unique<LeaseGuard>(app.settings().databaseUrl, cmd.lease, app.log(),
                                                 LeaseGuard::kTtlSeconds, &app.database());
            if (!lease->acquired()) {
                const auto& other = lease->heldBy();
                app.err() << "supportmail " << cmd.lease << ": another run holds the lease (holder "
                          << (other ? other->holder : std::string("unknown")) << ", until "
                          << (other ? Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(other->expiresAt),
                                                                      "%Y-%m-%d %H:%M:%S UTC")
                                : std::string("unknown"))
                          << "); exiting\n";
                return kExitLeaseHeld;
            }
            JobRunRecord::setLeaseHolder(lease->holder());
        }
        return cmd.run(app, args);
    } catch (const store::RunInterrupted& e) {
        return failed(app, cmd, kExitTempFail, std::string("stopped, its open transaction rolled back: ") + e.what());
    } catch (const UsageError& e) {
        app.err() << "supportmail " << cmd.name << ": " << e.what() << " (see supportmail " << cmd.name << " --help)\n";
        return kExitUsage;
    } catch (const InputError& e) {
        return failed(app, cmd, kExitNoInput, e.what());
    } catch (const ConfigError& e) {
        return failed(app, cmd, kExitConfig, std::string("configuration error: ") + e.what());
    } catch (const mail::TemplateError& e) {
        return failed(app, cmd, kExitConfig, std::string("template error: ") + e.what());
    } catch (const store::StoreError& e) {
        return failed(app, cmd, kExitUnavailable, std::string("database unavailable: ") + e.what());
    } catch (const io::CsvError& e) {
        return failed(app, cmd, kExitDataErr, "line " + std::to_string(e.line()) + ": " + e.what());
    } catch (const Poco::Exception& e) {
        return failed(app, cmd, kExitSoftware, e.displayText());
    } catch (const std::exception& e) {
        return failed(app, cmd, kExitSoftware, e.what());
    }
}

int runApplication(int argc, char** argv) {
    // Split: the global options go to POCO wherever they stand, before or after the
    // command (`supportmail status --config F` as `supportmail --config F status`);
    // everything else from the command on is the command's. --help before the
    // command is the global help, after it the command's.
    std::vector<std::string> globalArgs{argv[0]};
    std::vector<std::string> commandArgs;
    auto usage = [](const std::string& what) {
        std::cerr << "supportmail: " << what << " (see supportmail --help)\n";
        return kExitUsage;
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--config" || a == "-c") {
            if (i + 1 >= argc || argv[i + 1][0] == '-' || argv[i + 1][0] == '\0')
                return usage(a + ": needs a file (" + a + " FILE)");
            globalArgs.push_back(a);
            globalArgs.push_back(argv[++i]);
            continue;
        }
        if (a.rfind("--config=", 0) == 0 && a.size() == 9) return usage("--config: needs a file (--config=FILE)");
        if (a == "--pidfile" || a == "--umask") {  // the daemon's options take a value the same way
            if (i + 1 >= argc || argv[i + 1][0] == '-') return usage(a + ": needs a value (" + a + "=VALUE)");
            globalArgs.push_back(a + "=" + argv[++i]);
            continue;
        }
        static const char* flags[] = {"-v", "--verbose", "-q", "--quiet", "--daemon"};
        bool global = a.rfind("--config=", 0) == 0 || a.rfind("--umask=", 0) == 0 || a.rfind("--pidfile=", 0) == 0;
        for (const char* k : flags) global = global || a == k;
        if (global) {
            globalArgs.push_back(a);
        } else if (!commandArgs.empty()) {
            commandArgs.push_back(a);
        } else if (a == "-h" || a == "--help") {
            globalArgs.push_back(a);
        } else if (!a.empty() && a[0] == '-') {
            std::string name = a.substr(0, a.find('='));
            return usage(name + ": unknown option");
        } else {
            commandArgs.push_back(a);
        }
    }
    SupportmailApp app(std::move(commandArgs));
    std::vector<char*> gargv;
    for (auto& s : globalArgs) gargv.push_back(s.data());
    try {
        return app.run(static_cast<int>(gargv.size()), gargv.data());
    } catch (const Poco::Util::OptionException& e) {
        return usage(optionProblem(e));
    }
}

}  // namespace sm::app
