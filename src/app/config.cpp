#include "app/config.h"

#include "app/logging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/String.h>
#include <Poco/RegularExpression.h>
#include <Poco/StringTokenizer.h>
#include <Poco/Util/PropertyFileConfiguration.h>

namespace sm::app {
namespace {

// Every key the program reads. A pattern key uses '*' for one dotted segment.
const std::set<std::string>& knownKeys() {
    static const std::set<std::string> keys = {
        "database.url",
        "templates.dir",
        "logging.level",
        "logging.channel",
        "logging.format",
        "logging.file",
        "logging.file_rotate",
        "logging.file_keep",
        "logging.syslog_facility",
        "logging.syslog_ident",
        "mail.from",
        "mail.from_name",
        "mail.support_address",
        "mail.admin",
        "mail.message_id_domain",
        "transport.url",
        "transport.starttls",
        "transport.allow_plaintext",
        "transport.verify_peer",
        "transport.ca_file",
        "transport.username",
        "transport.password_file",
        "transport.helo",
        "transport.connect_timeout",
        "transport.timeout",
        "delivery.batch",
        "delivery.retry_initial",
        "delivery.retry_max",
        "delivery.give_up_after",
        "delivery.bounce_address",
        "delivery.claim_seconds",
        "delivery.connections",
        "activation.batch",
        "activation.regional_rule",
        "activation.overdue_days",
        "regions.north_america",
        "regions.latin_america",
        "regions.emea",
        "regions.apac",
        "plans.*.name",
        "plans.*.benefit",
        "plans.*.type",
        "plans.*.incidents",
        "plans.*.hours",
        "plans.*.scope",
        "plans.*.validity_days",
        "inbound.*.url",
        "inbound.*.starttls",
        "inbound.*.allow_plaintext",
        "inbound.*.verify_peer",
        "inbound.*.ca_file",
        "inbound.*.username",
        "inbound.*.password_file",
        "inbound.*.move_to",
        "process.max_message_bytes",
        "process.replies_per_sender_per_hour",
        "process.batch",
        "process.resends_per_partner_per_day",
        "process.resends_per_sender_per_day",
        "process.require_authentication",
        "process.authserv_id",
        "products.*.name",
        "products.*.aliases",
        "products.*.scope",
        "products.*.uses_ids",
        "products.*.portal",
        "calendar.working_days",
        "calendar.hours",
        "calendar.utc_offset",
        "calendar.time_zone",
        "countries.*.time_zone",
        "calendar.holidays",
        "severity.a.hours",
        "severity.a.around_the_clock",
        "severity.b.hours",
        "severity.b.around_the_clock",
        "severity.c.hours",
        "severity.c.around_the_clock",
        "expiry.reminder_days",
        "schedule.fetch_process",
        "schedule.deliver",
        "schedule.activate",
        "schedule.expire",
    };
    return keys;
}

// The NAME of every `section.NAME.field` key in the file: the plans of plans.<key>.<field>, and so on.
std::set<std::string> sectionNames(const std::map<std::string, ConfigLine>& lines, const std::string& section) {
    const std::string prefix = section + ".";
    std::set<std::string> names;
    for (const auto& [key, line] : lines)
        if (key.rfind(prefix, 0) == 0) names.insert(key.substr(prefix.size(), key.rfind('.') - prefix.size()));
    return names;
}

bool isKnownKey(const std::string& key) {
    if (knownKeys().count(key)) return true;
    // plans.<name>.<field>
    auto first = key.find('.');
    auto last = key.rfind('.');
    if (first == std::string::npos || first == last) return false;
    std::string pattern = key.substr(0, first) + ".*" + key.substr(last);
    return knownKeys().count(pattern) > 0;
}

std::string trim(const std::string& s) { return Poco::trim(s); }

class Reader {
public:
    Reader(std::string file, std::map<std::string, ConfigLine> lines,
           Poco::AutoPtr<Poco::Util::PropertyFileConfiguration> conf)
        : file_(std::move(file)), lines_(std::move(lines)), conf_(std::move(conf)) {}

    bool has(const std::string& key) const { return lines_.count(key) > 0; }

    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        auto it = lines_.find(key);
        std::string where = file_ + (it != lines_.end() ? ":" + std::to_string(it->second.line) : "");
        throw ConfigError(where + ": " + key + ": " + why);
    }

    std::string str(const std::string& key, const std::string& def) const {
        return has(key) ? trim(conf_->getString(key)) : def;
    }
    std::string required(const std::string& key) const {
        std::string v = str(key, "");
        if (v.empty()) fail(key, "is required and has no value");
        return v;
    }
    int integer(const std::string& key, int def, int min, int max) const {
        if (!has(key)) return def;
        std::string v = str(key, "");
        try {
            std::size_t pos = 0;
            long n = std::stol(v, &pos);
            if (pos != v.size()) throw std::invalid_argument("trailing");
            if (n < min || n > max)
                fail(key, "'" + v + "' is out of range " + std::to_string(min) + ".." + std::to_string(max));
            return static_cast<int>(n);
        } catch (const std::logic_error&) {
            fail(key, "'" + v + "' is not a whole number");
        }
    }
    bool boolean(const std::string& key, bool def) const {
        if (!has(key)) return def;
        std::string v = Poco::toLower(str(key, ""));
        if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
        if (v == "false" || v == "no" || v == "off" || v == "0") return false;
        fail(key, "'" + v + "' is not true or false");
    }
    const std::map<std::string, ConfigLine>& lines() const { return lines_; }

private:
    std::string file_;
    std::map<std::string, ConfigLine> lines_;
    Poco::AutoPtr<Poco::Util::PropertyFileConfiguration> conf_;
};

std::string resolve(const std::string& baseDir, const std::string& path) {
    if (path.empty()) return path;
    Poco::Path p(path);
    if (p.isAbsolute()) return path;
    return Poco::Path(baseDir).resolve(p).toString();
}

bool validEmail(const std::string& s) {
    static const std::regex re(R"(^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$)");
    return std::regex_match(s, re);
}

/// Opened once, then checked on the descriptor (no race between a check and the open):
/// a regular file, owned by the user we run as, no access for group or others. The
/// first line is the password.
std::string readPasswordFile(const Reader& r, const std::string& path, const std::string& key = "transport.password_file") {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) r.fail(key, "cannot open '" + path + "': " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) r.fail(key, "cannot stat '" + path + "': " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) r.fail(key, "'" + path + "' is not a regular file (it must hold a password)");
    if (st.st_uid != ::geteuid())
        r.fail(key, "'" + path + "' is owned by uid " + std::to_string(st.st_uid) + ", not by the user running " +
                        "supportmail (uid " + std::to_string(::geteuid()) + "); chown it (it holds a password)");
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        r.fail(key, "'" + path + "' is readable by group or others; chmod 600 it (it holds a password)");
    std::string content;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) r.fail(key, "cannot read '" + path + "': " + std::strerror(errno));
        if (n == 0 || content.size() > 65536) break;
        content.append(buf, static_cast<std::size_t>(n));
    }
    std::string line = content.substr(0, content.find('\n'));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

/// The password a PostgreSQL database.url carries (password=... in a conninfo, or
/// user:password@ in a URI), or "".
std::string databasePassword(const std::string& url) {
    static const std::regex keyword(R"((?:^|\s|:)password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]+))");
    static const std::regex uri(R"(postgres(?:ql)?://[^:/@\s]*:([^@\s]*)@)");
    std::smatch m;
    if (std::regex_search(url, m, keyword)) {
        std::string v = m[1].str();
        if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
        return v;
    }
    if (std::regex_search(url, m, uri)) return m[1].str();
    return "";
}

}  // namespace

void requireTransportPassword(const config::Settings& s) {
    if (!s.transport.username.empty() && s.transport.password.empty())
        throw ConfigError(s.configFile + ": transport.username: a user is set but no password: set "
                          "SUPPORTMAIL_SMTP_PASSWORD or transport.password_file");
}

void requireInboundPasswords(const config::Settings& s) {
    for (const auto& in : s.inbound)
        if (!in.username.empty() && in.password.empty())
            throw ConfigError(s.configFile + ": inbound." + in.name + ".username: a user is set but no password: set " +
                              in.passwordHint);
}

std::map<std::string, ConfigLine> checkConfigFile(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw ConfigError(file + ": cannot open the configuration file");
    std::map<std::string, ConfigLine> out;
    static const std::regex keyRe(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]*$)");
    std::string raw;
    int lineNo = 0;
    while (std::getline(in, raw)) {
        ++lineNo;
        int startLine = lineNo;
        // Continuation lines (a trailing backslash) belong to the line they extend.
        while (!raw.empty() && raw.back() == '\\') {
            std::string next;
            if (!std::getline(in, next)) break;
            ++lineNo;
            raw.pop_back();
            raw += trim(next);
        }
        std::string line = trim(raw);
        if (line.empty() || line[0] == '#' || line[0] == '!') continue;
        auto sep = line.find_first_of("=:");
        if (sep == std::string::npos)
            throw ConfigError(file + ":" + std::to_string(startLine) + ": expected 'key = value', got '" + line + "'");
        std::string key = trim(line.substr(0, sep));
        if (key.empty() || !std::regex_match(key, keyRe))
            throw ConfigError(file + ":" + std::to_string(startLine) + ": '" + key + "' is not a valid key");
        if (!isKnownKey(key))
            throw ConfigError(file + ":" + std::to_string(startLine) + ": unknown key '" + key + "'");
        if (out.count(key))
            throw ConfigError(file + ":" + std::to_string(startLine) + ": '" + key + "' is already set on line " +
                              std::to_string(out[key].line));
        out[key] = ConfigLine{trim(line.substr(sep + 1)), startLine};
    }
    return out;
}

config::Settings loadSettings(const std::string& fileArg) {
    Poco::Path abs = Poco::Path(fileArg).absolute();
    std::string file = abs.toString();
    if (!Poco::File(file).exists()) throw ConfigError(file + ": no such configuration file");
    auto lines = checkConfigFile(file);
    Poco::AutoPtr<Poco::Util::PropertyFileConfiguration> conf;
    try {
        conf = new Poco::Util::PropertyFileConfiguration(file);
    } catch (const Poco::Exception& e) {
        throw ConfigError(file + ": " + e.displayText());
    }
    Reader r(file, lines, conf);

    config::Settings s;
    s.configFile = file;
    s.baseDir = abs.parent().toString();
    std::string db = r.required("database.url");
    if (db.rfind("sqlite:", 0) == 0) db = "sqlite:" + resolve(s.baseDir, db.substr(7));
    else if (db.rfind("postgresql:", 0) != 0) r.fail("database.url", "'" + db + "' must start with sqlite: or postgresql:");
    s.databaseUrl = db;
    addSecret(databasePassword(db));  // never in a log line
    s.templatesDir = resolve(s.baseDir, r.str("templates.dir", "../templates"));
    s.log.level = r.str("logging.level", "notice");
    static const std::set<std::string> levels = {"fatal", "critical", "error", "warning", "notice", "information", "debug", "trace"};
    if (!levels.count(s.log.level)) r.fail("logging.level", "'" + s.log.level + "' is not a POCO log level");
    s.log.channel = r.str("logging.channel", "stderr");
    if (s.log.channel != "stderr" && s.log.channel != "file" && s.log.channel != "syslog")
        r.fail("logging.channel", "'" + s.log.channel + "' is not one of stderr, file, syslog");
    s.log.format = r.str("logging.format", "plain");
    if (s.log.format != "plain" && s.log.format != "json")
        r.fail("logging.format", "'" + s.log.format + "' is not one of plain, json");
    if (r.has("logging.file")) s.log.file = resolve(s.baseDir, r.str("logging.file", ""));
    if (s.log.channel == "file" && s.log.file.empty())
        r.fail("logging.channel", "'file' needs logging.file (the log file's path)");
    s.log.rotate = r.str("logging.file_rotate", "");
    {
        // POCO FileChannel's rotation: never, daily, weekly, monthly, or a size ("10 M", "500 K").
        static const Poco::RegularExpression rotation("^(never|daily|weekly|monthly|[1-9][0-9]* ?[KM])$");
        if (!s.log.rotate.empty() && !rotation.match(s.log.rotate))
            r.fail("logging.file_rotate", "'" + s.log.rotate + "' is not never, daily, weekly, monthly or a size like 10 M");
    }
    s.log.keep = r.integer("logging.file_keep", 0, 0, 1000);
    s.log.syslogFacility = Poco::toLower(r.str("logging.syslog_facility", "daemon"));
    static const std::set<std::string> facilities = {"user", "mail", "daemon", "local0", "local1", "local2",
                                                     "local3", "local4", "local5", "local6", "local7"};
    if (!facilities.count(s.log.syslogFacility))
        r.fail("logging.syslog_facility", "'" + s.log.syslogFacility + "' is not one of user, mail, daemon, local0..local7");
    s.log.syslogIdent = r.str("logging.syslog_ident", "supportmail");

    s.from.email = r.required("mail.from");
    if (!validEmail(s.from.email)) r.fail("mail.from", "'" + s.from.email + "' is not an email address");
    s.from.name = r.str("mail.from_name", "Partner Support");
    s.supportAddress = r.str("mail.support_address", s.from.email);
    if (!validEmail(s.supportAddress)) r.fail("mail.support_address", "'" + s.supportAddress + "' is not an email address");
    s.adminAddress = r.str("mail.admin", "");
    if (!s.adminAddress.empty() && !validEmail(s.adminAddress))
        r.fail("mail.admin", "'" + s.adminAddress + "' is not an email address");
    s.messageIdDomain = r.str("mail.message_id_domain", s.from.email.substr(s.from.email.find('@') + 1));

    auto& t = s.transport;
    t.url = r.required("transport.url");
    for (const char* scheme : {"maildir:", "spool:"})
        if (t.url.rfind(scheme, 0) == 0) {
            std::string prefix = scheme;
            t.url = prefix + resolve(s.baseDir, t.url.substr(prefix.size()));
        }
    if (t.url.rfind("smtp://", 0) != 0 && t.url.rfind("smtps://", 0) != 0 && t.url.rfind("maildir:", 0) != 0 &&
        t.url.rfind("spool:", 0) != 0)
        r.fail("transport.url", "'" + t.url + "' must start with smtp://, smtps://, maildir: or spool:");
    {
        // TLS by default (mail/tls_policy.h): STARTTLS for any server not on the loopback.
        const bool asked = r.boolean("transport.starttls", false);
        try {
            s.transportTlsRule = mail::tlsRule(t.url, r.has("transport.starttls") ? &asked : nullptr,
                                               r.boolean("transport.allow_plaintext", false));
        } catch (const std::invalid_argument& e) {
            r.fail("transport.starttls", e.what());
        }
        t.startTls = s.transportTlsRule == mail::TlsRule::StartTlsRequired;
    }
    t.verifyPeer = r.boolean("transport.verify_peer", true);
    t.caFile = resolve(s.baseDir, r.str("transport.ca_file", ""));
    t.username = r.str("transport.username", "");
    t.heloName = r.str("transport.helo", "supportmail.localdomain");
    t.connectTimeoutSeconds = r.integer("transport.connect_timeout", 15, 1, 600);
    t.timeoutSeconds = r.integer("transport.timeout", 60, 1, 3600);
    if (const char* pw = std::getenv("SUPPORTMAIL_SMTP_PASSWORD")) t.password = pw;
    else if (r.has("transport.password_file"))
        t.password = readPasswordFile(r, resolve(s.baseDir, r.str("transport.password_file", "")));
    addSecret(t.password);  // never in a log line

    s.delivery.batch = r.integer("delivery.batch", 200, 1, 100000);
    s.delivery.retryInitialSeconds = r.integer("delivery.retry_initial", 60, 1, 86400);
    s.delivery.retryMaxSeconds = r.integer("delivery.retry_max", 3600, 1, 7 * 86400);
    s.delivery.giveUpAfterSeconds = r.integer("delivery.give_up_after", 5 * 86400, 60, 60 * 86400);
    s.delivery.bounceAddress = Poco::toLower(r.str("delivery.bounce_address", ""));
    if (!s.delivery.bounceAddress.empty() && (s.delivery.bounceAddress.find('@') == std::string::npos ||
                                              s.delivery.bounceAddress.find('+') != std::string::npos))
        r.fail("delivery.bounce_address", "'" + s.delivery.bounceAddress +
                                              "' must be an address without '+' (the outbox id is added after one)");
    s.delivery.claimSeconds = r.integer("delivery.claim_seconds", 300, 2, 86400);
    s.delivery.connections = r.integer("delivery.connections", 1, 1, 32);
    s.activation.batch = r.integer("activation.batch", 20000, 1, 100000);
    s.activation.regionalRule = r.boolean("activation.regional_rule", true);
    s.activation.overdueDays = r.integer("activation.overdue_days", 28, 1, 365);

    const std::pair<const char*, domain::Region> regionKeys[] = {
        {"regions.north_america", domain::Region::NorthAmerica},
        {"regions.latin_america", domain::Region::LatinAmerica},
        {"regions.emea", domain::Region::Emea},
        {"regions.apac", domain::Region::Apac}};
    static const std::regex countryRe("^[A-Z]{2}$");
    for (const auto& [key, region] : regionKeys) {
        Poco::StringTokenizer tok(r.str(key, ""), ",", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        for (const auto& c : tok) {
            if (!std::regex_match(c, countryRe)) r.fail(key, "'" + c + "' is not a two-letter upper-case country code");
            s.regions.assign(c, region);
        }
    }

    // plans.<key>.<field>
    std::vector<domain::Plan> plans;
    for (const auto& k : sectionNames(lines, "plans")) {
        const std::string p = "plans." + k + ".";
        domain::Plan plan;
        plan.key = k;
        plan.name = r.required(p + "name");
        auto benefit = domain::parseBenefit(r.required(p + "benefit"));
        if (!benefit)
            r.fail(p + "benefit", "must be one of gold, silver, action_pack, scs, asfp, competency_kit");
        plan.benefit = *benefit;
        plan.typeCode = r.required(p + "type");
        plan.incidents = r.integer(p + "incidents", 0, 0, 100000);
        plan.hours = r.integer(p + "hours", 0, 0, 100000);
        auto scope = domain::parseScope(r.str(p + "scope", "any"));
        if (!scope) r.fail(p + "scope", "must be on_prem, cloud or any");
        plan.scope = *scope;
        plan.validityDays = r.integer(p + "validity_days", 365, 1, 3650);
        plans.push_back(plan);
    }
    // inbound.<name>.*
    for (const auto& n : sectionNames(lines, "inbound")) {
        const std::string p = "inbound." + n + ".";
        config::InboundSettings in;
        in.name = n;
        in.url = r.required(p + "url");
        if (in.url.rfind("maildir:", 0) == 0) in.url = "maildir:" + resolve(s.baseDir, in.url.substr(8));
        else if (in.url.rfind("imap://", 0) != 0 && in.url.rfind("imaps://", 0) != 0)
            r.fail(p + "url", "'" + in.url + "' must start with imap://, imaps:// or maildir:");
        {
            const bool asked = r.boolean(p + "starttls", false);
            try {
                in.tlsRule = mail::tlsRule(in.url, r.has(p + "starttls") ? &asked : nullptr,
                                           r.boolean(p + "allow_plaintext", false));
            } catch (const std::invalid_argument& e) {
                r.fail(p + "starttls", e.what());
            }
            in.startTls = in.tlsRule == mail::TlsRule::StartTlsRequired;
        }
        in.verifyPeer = r.boolean(p + "verify_peer", true);
        in.caFile = resolve(s.baseDir, r.str(p + "ca_file", ""));
        in.username = r.str(p + "username", "");
        in.moveTo = r.str(p + "move_to", "");
        std::string envName = "SUPPORTMAIL_IMAP_PASSWORD_" + Poco::toUpper(n);
        for (char& c : envName)
            if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
        if (const char* pw = std::getenv(envName.c_str())) in.password = pw;
        else if (const char* pw2 = std::getenv("SUPPORTMAIL_IMAP_PASSWORD")) in.password = pw2;
        else if (r.has(p + "password_file"))
            in.password = readPasswordFile(r, resolve(s.baseDir, r.str(p + "password_file", "")), p + "password_file");
        addSecret(in.password);  // never in a log line
        in.passwordHint = envName + ", SUPPORTMAIL_IMAP_PASSWORD or " + p + "password_file";
        s.inbound.push_back(in);
    }
    s.process.maxMessageBytes = r.integer("process.max_message_bytes", 25 * 1024 * 1024, 1024, 1 << 30);
    s.process.repliesPerSenderPerHour = r.integer("process.replies_per_sender_per_hour", 10, 1, 100000);
    s.process.batch = r.integer("process.batch", 100, 1, 100000);
    s.process.resendsPerPartnerPerDay = r.integer("process.resends_per_partner_per_day", 3, 1, 100000);
    s.process.resendsPerSenderPerDay = r.integer("process.resends_per_sender_per_day", 3, 1, 100000);
    s.process.requireAuthentication = r.boolean("process.require_authentication", true);
    s.process.authservId = r.str("process.authserv_id", "");

    // products.<key>.*
    std::vector<domain::Product> products;
    for (const auto& k : sectionNames(lines, "products")) {
        const std::string p = "products." + k + ".";
        domain::Product prod;
        prod.key = k;
        prod.name = r.required(p + "name");
        Poco::StringTokenizer aliases(r.str(p + "aliases", ""), ",",
                                      Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        for (const auto& a : aliases) prod.aliases.push_back(Poco::toLower(a));
        auto scope = domain::parseScope(r.required(p + "scope"));
        if (!scope || *scope == domain::Scope::Any) r.fail(p + "scope", "must be on_prem or cloud");
        prod.scope = *scope;
        prod.usesIds = r.boolean(p + "uses_ids", true);
        prod.portal = r.str(p + "portal", "");
        if (!prod.usesIds && prod.portal.empty()) r.fail(p + "portal", "a product without IDs needs the portal its requests go to");
        products.push_back(prod);
    }
    s.products = domain::ProductCatalogue(std::move(products));

    // calendar.*
    if (r.has("calendar.working_days")) {
        static const std::map<std::string, int> days = {{"sun", 0}, {"mon", 1}, {"tue", 2}, {"wed", 3},
                                                        {"thu", 4}, {"fri", 5}, {"sat", 6}};
        s.calendar.workingDays.clear();
        Poco::StringTokenizer tok(r.str("calendar.working_days", ""), ",",
                                  Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        for (const auto& d : tok) {
            auto it = days.find(Poco::toLower(d));
            if (it == days.end()) r.fail("calendar.working_days", "'" + d + "' is not a day (mon, tue, ... sun)");
            s.calendar.workingDays.insert(it->second);
        }
    }
    if (r.has("calendar.hours")) {
        std::string h = r.str("calendar.hours", "");
        int h1 = 0, m1 = 0, h2 = 0, m2 = 0;
        char tail = 0;
        if (std::sscanf(h.c_str(), "%d:%d-%d:%d%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 < 0 || h1 > 24 || h2 < 0 ||
            h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 || h2 * 60 + m2 <= h1 * 60 + m1)
            r.fail("calendar.hours", "'" + h + "' is not a range like 09:00-17:00");
        s.calendar.startMinute = h1 * 60 + m1;
        s.calendar.endMinute = h2 * 60 + m2;
    }
    if (r.has("calendar.utc_offset")) {
        auto off = domain::parseUtcOffset(r.str("calendar.utc_offset", ""));
        if (!off) r.fail("calendar.utc_offset", "'" + r.str("calendar.utc_offset", "") + "' is not an offset like +07:00");
        s.calendar.utcOffsetMinutes = *off;
    }
    if (r.has("calendar.time_zone")) {
        std::string zone = r.str("calendar.time_zone", "");
        if (!domain::isKnownTimeZone(zone))
            r.fail("calendar.time_zone", "'" + zone + "' is not an IANA time zone like Asia/Ho_Chi_Minh (tzdata)");
        s.calendar.timeZone = zone;
    }
    for (const auto& country : sectionNames(lines, "countries")) {
        const std::string key = "countries." + country + ".time_zone";
        std::string zone = r.str(key, "");
        if (!domain::isKnownTimeZone(zone)) r.fail(key, "'" + zone + "' is not an IANA time zone like Europe/Berlin");
        s.countryTimeZones[Poco::toUpper(country)] = zone;
    }
    {
        Poco::StringTokenizer tok(r.str("calendar.holidays", ""), ",",
                                  Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        for (const auto& d : tok) {
            static const std::regex dateRe("^[0-9]{4}-[0-9]{2}-[0-9]{2}$");
            if (!std::regex_match(d, dateRe)) r.fail("calendar.holidays", "'" + d + "' is not a date YYYY-MM-DD");
            s.calendar.holidays.insert(d);
        }
    }
    // severity.*
    auto target = [&](const std::string& sev, domain::SeverityTarget def) {
        domain::SeverityTarget t;
        t.hours = r.integer("severity." + sev + ".hours", def.hours, 1, 24 * 30);
        t.aroundTheClock = r.boolean("severity." + sev + ".around_the_clock", def.aroundTheClock);
        return t;
    };
    s.severities.a = target("a", s.severities.a);
    s.severities.b = target("b", s.severities.b);
    s.severities.c = target("c", s.severities.c);

    // expiry.reminder_days: comma-separated positive whole numbers of days.
    if (r.has("expiry.reminder_days")) {
        const std::string key = "expiry.reminder_days";
        Poco::StringTokenizer tok(r.str(key, ""), ",", Poco::StringTokenizer::TOK_TRIM);
        std::set<int> days;
        for (const auto& d : tok) {
            static const std::regex dayRe("^[0-9]{1,4}$");
            if (!std::regex_match(d, dayRe) || std::stoi(d) < 1 || std::stoi(d) > 3650)
                r.fail(key, "'" + d + "' is not a whole number of days 1..3650 (expected a list like 30, 7)");
            days.insert(std::stoi(d));
        }
        if (days.empty()) r.fail(key, "needs at least one number of days (e.g. 30, 7)");
        s.expiryReminderDays.assign(days.rbegin(), days.rend());
    }

    // schedule.*: intervals in seconds (0 = off), daily times HH:MM (empty = off).
    s.schedule.fetchProcessSeconds = r.integer("schedule.fetch_process", s.schedule.fetchProcessSeconds, 0, 7 * 86400);
    s.schedule.deliverSeconds = r.integer("schedule.deliver", s.schedule.deliverSeconds, 0, 7 * 86400);
    auto daily = [&r](const std::string& key, int def) {
        if (!r.has(key)) return def;
        std::string v = r.str(key, "");
        if (v.empty()) return -1;
        static const std::regex timeRe("^([01][0-9]|2[0-3]):([0-5][0-9])$");
        std::smatch m;
        if (!std::regex_match(v, m, timeRe)) r.fail(key, "'" + v + "' is not a time of day HH:MM (or empty for off)");
        return std::stoi(m.str(1)) * 60 + std::stoi(m.str(2));
    };
    s.schedule.activateMinute = daily("schedule.activate", s.schedule.activateMinute);
    s.schedule.expireMinute = daily("schedule.expire", s.schedule.expireMinute);

    try {
        s.plans = domain::PlanCatalogue(std::move(plans));
    } catch (const std::invalid_argument& e) {
        throw ConfigError(file + ": " + e.what());
    }
    return s;
}

}  // namespace sm::app
