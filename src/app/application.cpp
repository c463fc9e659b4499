#include "app/application.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/File.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include "app/config.h"
#include "app/csv.h"
#include "domain/secure_random.h"
#include "jobs/activate.h"
#include "jobs/deliver.h"
#include "jobs/fetch.h"
#include "jobs/process.h"
#include "mail/inspect.h"
#include "mail/mime_parser.h"
#include "jobs/import_reference.h"
#include "mail/templates.h"
#include "mail/transport.h"
#include "store/database.h"
#include "store/job_runs.h"

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace sm::app {
namespace {

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

class SupportmailApp;

struct Command {
    std::string name;
    std::string arguments;  ///< e.g. "FILE.csv"
    std::string summary;
    std::string description;
    std::function<void(OptionSet&)> options;
    std::size_t minPositional = 0, maxPositional = 0;
    std::function<int(SupportmailApp&, const Args&)> run;
};

const std::vector<Command>& commands();

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class SupportmailApp : public Poco::Util::ServerApplication {
public:
    SupportmailApp(std::vector<std::string> commandArgs) : commandArgs_(std::move(commandArgs)) {
        setUnixOptions(true);
    }

    // ---- what commands use ----
    Settings& settings() {
        if (!settings_) settings_ = std::make_unique<Settings>(loadSettings(configPath()));
        return *settings_;
    }
    store::Database& database() {
        if (!db_) {
            db_ = store::Database::open(settings().databaseUrl);
            db_->migrate();
        }
        return *db_;
    }
    Poco::Logger& log() { return Poco::Logger::get("supportmail"); }
    std::ostream& out() { return std::cout; }
    std::ostream& err() { return std::cerr; }

protected:
    void initialize(Application& self) override {
        ServerApplication::initialize(self);
        Poco::AutoPtr<Poco::PatternFormatter> fmt(new Poco::PatternFormatter("%Y-%m-%d %H:%M:%S %p %s: %t"));
        Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
        Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(fmt, console));
        Poco::Logger::root().setChannel(channel);
        Poco::Logger::root().setLevel("notice");
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
        options.addOption(Option("verbose", "v", "log each step (information level) to stderr")
                              .required(false)
                              .repeatable(false)
                              .binding("supportmail.verbose"));
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
        for (const auto& c : commands())
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
        try {
            if (config().hasProperty("supportmail.verbose")) Poco::Logger::root().setLevel("information");
            return cmd->run(*this, args);
        } catch (const UsageError& e) {
            err() << "supportmail " << name << ": " << e.what() << "\n";
            return kExitUsage;
        } catch (const ConfigError& e) {
            err() << "supportmail " << name << ": configuration error: " << e.what() << "\n";
            return kExitConfig;
        } catch (const mail::TemplateError& e) {
            err() << "supportmail " << name << ": template error: " << e.what() << "\n";
            return kExitConfig;
        } catch (const store::StoreError& e) {
            err() << "supportmail " << name << ": database unavailable: " << e.what() << "\n";
            return kExitUnavailable;
        } catch (const CsvError& e) {
            err() << "supportmail " << name << ": line " << e.line() << ": " << e.what() << "\n";
            return kExitDataErr;
        } catch (const Poco::Exception& e) {
            err() << "supportmail " << name << ": " << e.displayText() << "\n";
            return kExitSoftware;
        } catch (const std::exception& e) {
            err() << "supportmail " << name << ": " << e.what() << "\n";
            return kExitSoftware;
        }
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
        for (const auto& c : commands()) {
            std::cout << "  " << c.name;
            for (std::size_t i = c.name.size(); i < 18; ++i) std::cout << ' ';
            std::cout << c.summary << "\n";
        }
        std::cout << "\nExit codes: 0 ok, 64 usage, 65 bad input data, 69 server or database unavailable,\n"
                     "70 internal error, 75 temporary failure (try again later), 78 configuration error.\n"
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
};

/// Records one run of a job in job_runs: started now, finished with the outcome
/// and counts the job reports, or with the error that ended it.
class JobRunRecord {
public:
    JobRunRecord(store::Database& db, const std::string& job) : runs_(db), id_(runs_.start(job)) {}
    ~JobRunRecord() {
        if (!finished_) {
            try {
                runs_.finish(id_, "failed", counts, error.empty() ? "ended by an exception" : error);
            } catch (...) {
            }
        }
    }
    void finish(const std::string& outcome) {
        runs_.finish(id_, outcome, counts, error);
        finished_ = true;
    }
    std::map<std::string, std::int64_t> counts;
    std::string error;

private:
    store::JobRuns runs_;
    std::int64_t id_;
    bool finished_ = false;
};

void applyLogLevel(SupportmailApp& app) {
    if (!app.config().hasProperty("supportmail.verbose")) Poco::Logger::root().setLevel(app.settings().logLevel);
}

void printProblems(std::ostream& err, const std::vector<jobs::LineProblem>& problems) {
    for (const auto& p : problems)
        err << "line " << p.line << (p.field.empty() ? "" : ", " + p.field) << ": " << p.reason << "\n";
}

int runImport(SupportmailApp& app, const Args& args, bool partners) {
    applyLogLevel(app);
    const std::string& file = args.positional.at(0);
    if (!Poco::File(file).exists()) {
        app.err() << "supportmail: " << file << ": no such file\n";
        return kExitDataErr;
    }
    bool skip = args.has("skip-bad-lines");
    JobRunRecord run(app.database(), partners ? "import-partners" : "import-renewals");
    auto report = partners ? jobs::importPartners(app.database(), app.settings(), file, skip)
                           : jobs::importRenewals(app.database(), app.settings(), file, skip);
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

int runActivate(SupportmailApp& app, const Args& args) {
    applyLogLevel(app);
    jobs::ActivationOptions opts;
    opts.dryRun = args.has("dry-run");
    opts.partnerId = args.get("partner");
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    domain::SystemRandom random;
    std::unique_ptr<JobRunRecord> run;
    if (!opts.dryRun) run = std::make_unique<JobRunRecord>(app.database(), "activate");
    auto report = jobs::activate(app.database(), settings, templates, random, opts, app.log());
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

int runDeliver(SupportmailApp& app, const Args& args) {
    applyLogLevel(app);
    auto& settings = app.settings();
    int limit = 0;
    if (args.has("limit")) {
        try {
            limit = std::stoi(args.get("limit"));
        } catch (const std::exception&) {
            throw UsageError("--limit needs a number");
        }
    }
    requireTransportPassword(settings);
    std::unique_ptr<mail::Transport> transport;
    try {
        transport = mail::makeTransport(settings.transport);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(settings.configFile + ": transport.url: " + e.what());
    }
    JobRunRecord run(app.database(), "deliver");
    auto report = jobs::deliver(app.database(), settings.delivery, *transport, app.log(), limit);
    run.counts = {{"sent", report.sent}, {"retried", report.retried}, {"parked", report.parked}};
    if (report.serverUnavailable) run.error = report.lastError;
    run.finish(report.serverUnavailable ? "server_unavailable" : "ok");
    app.out() << "deliver: " << report.sent << " sent, " << report.retried << " to retry, " << report.parked
              << " parked\n";
    if (report.serverUnavailable) {
        app.err() << "deliver: " << transport->describe() << " unavailable: " << report.lastError
                  << "; the rest stays queued\n";
        return kExitTempFail;
    }
    return kExitOk;
}

int runFetch(SupportmailApp& app, const Args&) {
    applyLogLevel(app);
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

int runProcess(SupportmailApp& app, const Args&) {
    applyLogLevel(app);
    auto& settings = app.settings();
    mail::TemplateSet templates(settings.templatesDir);
    JobRunRecord run(app.database(), "process");
    auto r = jobs::process(app.database(), settings, templates, app.log());
    run.counts = {{"processed", r.processed}, {"accepted", r.accepted},     {"refused", r.refused},
                  {"follow_ups", r.followUps}, {"bounces", r.bounces},      {"ignored", r.ignored},
                  {"quarantined", r.quarantined}, {"duplicates", r.duplicates}, {"rate_limited", r.rateLimited}};
    run.finish("ok");
    app.out() << "process: " << r.processed << " messages: " << r.accepted << " new cases, " << r.refused
              << " refused, " << r.followUps << " follow-ups, " << r.bounces << " bounces, " << r.ignored
              << " not answered, " << r.quarantined << " quarantined, " << r.duplicates << " duplicates\n";
    return kExitOk;
}

int runInspect(SupportmailApp& app, const Args& args) {
    const std::string& file = args.positional.at(0);
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        app.err() << "supportmail inspect: " << file << ": cannot read the file\n";
        return kExitDataErr;
    }
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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

const std::vector<Command>& commands() {
    static const std::vector<Command> all = {
        {"import-partners", "FILE.csv", "load partners, locations and contacts from the CRM's CSV file",
         "Columns: partner_id, partner_name, membership, hq_country, contact_email, contact_name,\n"
         "contact_role, contact_country, contact_language [, location_id, location_name, location_country].\n"
         "One line per contact. A file with errors loads nothing (exit 65) unless --skip-bad-lines.\n"
         "Loading the same file twice changes nothing.",
         [](OptionSet& s) { s.addOption(Option("skip-bad-lines", "", "load the good lines of a file with errors")); },
         1, 1, [](SupportmailApp& app, const Args& a) { return runImport(app, a, true); }},
        {"import-renewals", "FILE.csv", "load membership renewals from the CRM's CSV file",
         "Columns: partner_id, benefit (gold, silver, action_pack, scs, asfp, competency_kit),\n"
         "renewal_date (YYYY-MM-DD) [, location_id for competency_kit].\n"
         "A file with errors loads nothing (exit 65) unless --skip-bad-lines. Idempotent.",
         [](OptionSet& s) { s.addOption(Option("skip-bad-lines", "", "load the good lines of a file with errors")); },
         1, 1, [](SupportmailApp& app, const Args& a) { return runImport(app, a, false); }},
        {"activate", "", "activate pending renewals and queue the ID mails",
         "Gold, silver, SCS, ASfP and competency-kit renewals are activated; Action Pack renewals\n"
         "only with --partner. Reports renewals pending beyond the four-week promise.\n"
         "Exit 65 when a renewal could not be activated (the reason is printed).",
         [](OptionSet& s) {
             s.addOption(Option("dry-run", "n", "print what would be activated; change nothing"));
             s.addOption(Option("partner", "p", "only this partner (also activates its Action Pack renewals)")
                             .argument("ID"));
         },
         0, 0, runActivate},
        {"deliver", "", "send due outbox mail through the configured transport",
         "Sends over one reused SMTP connection (or into the spool directory). 4xx and connection\n"
         "errors are retried later with back-off; 5xx replies park the mail with the reply.\n"
         "Exit 75 when the server could not be reached (the mail stays queued).",
         [](OptionSet& s) { s.addOption(Option("limit", "", "send at most N mails").argument("N")); }, 0, 0,
         runDeliver},
        {"fetch", "", "store new mail from the configured mailboxes (inbound.NAME.*)",
         "IMAP (imap:// with STARTTLS, imaps://) or Maildir. Each message is stored durably and\n"
         "committed before it is marked \\Seen or moved on the server. Exit 75 when a server\n"
         "could not be reached, 69 when a login or mailbox failed.",
         nullptr, 0, 0, runFetch},
        {"process", "", "turn stored mail into incidents, follow-ups and replies",
         "One transaction per message: the incident, the ledger debit, the sender link and the\n"
         "reply commit together with the message's end state. Bounces mark contacts as bouncing;\n"
         "auto-replies, list mail and our own mail are never answered.",
         nullptr, 0, 0, runProcess},
        {"inspect", "FILE.eml", "print what the parser and the classifier make of one mail, as JSON",
         "Exit 0 for any mail that could be read, broken or not (its defects are listed);\n"
         "65 for a file that is not mail at all.",
         nullptr, 1, 1, runInspect},
        {"version", "", "print the version", "", nullptr, 0, 0,
         [](SupportmailApp& app, const Args&) {
             app.out() << "supportmail " << SUPPORTMAIL_VERSION << "\n";
             return kExitOk;
         }},
    };
    return all;
}

}  // namespace

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
            static const char* known[] = {"-h", "--help", "-v", "--verbose", "--daemon", "--umask", "--pidfile"};
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
