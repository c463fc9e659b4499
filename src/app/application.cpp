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
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include "app/command.h"
#include "app/config.h"
#include "app/csv.h"
#include "app/lease_guard.h"
#include "app/logging.h"
#include "app/progress.h"
#include "mail/templates.h"
#include "store/database.h"

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace sm::app {
namespace {

class SupportmailApp : public Poco::Util::ServerApplication, public CommandContext {
public:
    SupportmailApp(std::vector<std::string> commandArgs) : commandArgs_(std::move(commandArgs)) {
        setUnixOptions(true);
    }

    // ---- what commands use ----
    Settings& settings() override {
        if (!settings_) settings_ = std::make_unique<Settings>(loadSettings(configPath()));
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
        ServerApplication::defineOptions(options);
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
            err() << "supportmail: unknown command '" << name << "' (see supportmail --help)\n";
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
            err() << "supportmail " << name << ": " << e.displayText() << " (see supportmail " << name << " --help)\n";
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
        auto fresh = std::make_unique<Settings>(loadSettings(configPath()));  // throws: the old ones stay
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
        std::cout << "\nExit codes: 0 ok, 64 usage, 65 bad input data, 69 server or database unavailable,\n"
                     "70 internal error, 73 another run of this job holds its lease (nothing done),\n"
                     "75 temporary failure (try again later), 78 configuration error.\n"
                     "'supportmail COMMAND --help' describes a command.\n";
    }

    void printCommandHelp(const Command& cmd, const OptionSet& set) {
        Poco::Util::HelpFormatter help(set);
        help.setCommand("supportmail " + cmd.name);
        help.setUsage("[options] " + cmd.arguments);
        help.setHeader(cmd.summary);
        help.setFooter(cmd.description);
        help.setUnixStyle(true);
        help.format(std::cout);
    }

    std::vector<std::string> commandArgs_;
    bool helpRequested_ = false;
    std::unique_ptr<Settings> settings_;
    std::unique_ptr<store::Database> db_;
    std::optional<std::pair<LogSettings, bool>> appliedLogging_;  ///< what applyLogging() installed, with --verbose
    std::ostream discard_{nullptr};  // no buffer: every write is dropped
};

}  // namespace

namespace {
std::string& leaseHolder() {
    static std::string holder;
    return holder;
}
}  // namespace

void JobRunRecord::setLeaseHolder(const std::string& holder) { leaseHolder() = holder; }

JobRunRecord::JobRunRecord(store::Database& db, const std::string& job)
    : runs_(db), job_(job), id_(runs_.start(job, leaseHolder())) {
    setCurrentRun(id_, job_);
}

JobRunRecord::~JobRunRecord() {
    if (!finished_) {
        try {
            const std::string why = error.empty() ? "ended by an exception" : error;
            runs_.finish(id_, "failed", counts, why);
            Poco::Logger::get("supportmail").error(job_ + " failed: " + why);
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
        for (auto group : {referenceDataCommands, outboundCommands, inboundCommands, expiryCommands, caseCommands, queueCommands, opsCommands, serveCommands, doctorCommands, frameCommands})
            for (auto& c : group()) v.push_back(std::move(c));
        return v;
    }();
    return all;
}


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
            lease = std::make_unique<LeaseGuard>(app.settings().databaseUrl, cmd.lease, app.log());
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
    } catch (const UsageError& e) {
        app.err() << "supportmail " << cmd.name << ": " << e.what() << "\n";
        return kExitUsage;
    } catch (const ConfigError& e) {
        app.err() << "supportmail " << cmd.name << ": configuration error: " << e.what() << "\n";
        return kExitConfig;
    } catch (const mail::TemplateError& e) {
        app.err() << "supportmail " << cmd.name << ": template error: " << e.what() << "\n";
        return kExitConfig;
    } catch (const store::StoreError& e) {
        app.err() << "supportmail " << cmd.name << ": database unavailable: " << e.what() << "\n";
        return kExitUnavailable;
    } catch (const CsvError& e) {
        app.err() << "supportmail " << cmd.name << ": line " << e.line() << ": " << e.what() << "\n";
        return kExitDataErr;
    } catch (const Poco::Exception& e) {
        app.err() << "supportmail " << cmd.name << ": " << e.displayText() << "\n";
        return kExitSoftware;
    } catch (const std::exception& e) {
        app.err() << "supportmail " << cmd.name << ": " << e.what() << "\n";
        return kExitSoftware;
    }
}

int runApplication(int argc, char** argv) {
    // Split: global options before the command go to POCO; the command parses the rest.
    std::vector<std::string> globalArgs{argv[0]};
    std::vector<std::string> commandArgs;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (!commandArgs.empty()) {
            commandArgs.push_back(a);
        } else if (a == "--config" || a == "-c") {
            globalArgs.push_back(a);
            if (i + 1 < argc) globalArgs.push_back(argv[++i]);
        } else if (!a.empty() && a[0] == '-') {
            static const char* known[] = {"-h", "--help", "-v", "--verbose", "-q", "--quiet", "--daemon", "--umask", "--pidfile"};
            bool ok = a.rfind("--config=", 0) == 0 || a.rfind("--umask=", 0) == 0 || a.rfind("--pidfile=", 0) == 0;
            for (const char* k : known) ok = ok || a == k;
            if (!ok) {
                std::cerr << "supportmail: unknown option '" << a << "' (see supportmail --help)\n";
                return kExitUsage;
            }
            globalArgs.push_back(a);
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
        std::cerr << "supportmail: " << e.displayText() << " (see supportmail --help)\n";
        return kExitUsage;
    }
}

}  // namespace sm::app
