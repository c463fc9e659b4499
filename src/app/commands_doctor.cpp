// doctor: checks everything a run needs, one line per check, and does not stop at
// the first failure: the configuration (file and line), the database (migrations
// current; opened, never migrated), the outbound transport (SMTP connect, TLS,
// AUTH over libcurl, or the spool directory), every inbound mailbox (IMAP login
// and SELECT, or the Maildir's new/ and cur/) and every template in every
// language rendered with sample data. Changes nothing; never prints a password.
#include <unistd.h>

#include <curl/curl.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include "app/command.h"
#include "mail/inbound_source.h"
#include "mail/maildir_source.h"
#include "mail/smtp_transport.h"
#include "mail/templates.h"
#include "store/database.h"

namespace sm::app {
namespace {

namespace fs = std::filesystem;

enum class Severity { Server, Config };

class Report {
public:
    explicit Report(std::ostream& out) : out_(out) {}
    void ok(const std::string& what) { out_ << "ok   " << what << "\n" << std::flush; }
    void skip(const std::string& what, const std::string& why) {
        out_ << "skip " << what << ": " << why << "\n" << std::flush;
        ++skipped_;
    }
    void fail(const std::string& what, const std::string& why, Severity s) {
        out_ << "FAIL " << what << ": " << why << "\n" << std::flush;
        (s == Severity::Config ? configFailed_ : serverFailed_) = true;
        ++failed_;
    }
    int exitCode() const { return configFailed_ ? kExitConfig : serverFailed_ ? kExitUnavailable : kExitOk; }
    int failed() const { return failed_; }
    int skipped() const { return skipped_; }

private:
    std::ostream& out_;
    bool configFailed_ = false, serverFailed_ = false;
    int failed_ = 0, skipped_ = 0;
};

std::string oneLine(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ';');
    std::replace(s.begin(), s.end(), '\r', ' ');
    while (!s.empty() && (s.back() == ' ' || s.back() == ';')) s.pop_back();
    return s;
}

// ---- database -----------------------------------------------------------------

void checkDatabase(Report& r, const config::Settings& s) {
    const std::string what = "database";
    const int latest = store::Database::latestSchemaVersion();
    if (s.databaseUrl.rfind("sqlite:", 0) == 0) {
        const std::string path = s.databaseUrl.substr(7);
        std::error_code ec;
        if (!fs::exists(path, ec)) {  // opening would create it: doctor changes nothing
            r.fail(what, s.databaseUrl + ": does not exist (schema version 0 of " + std::to_string(latest) +
                             "; any job creates and migrates it)",
                   Severity::Config);
            return;
        }
    }
    try {
        auto db = store::Database::open(s.databaseUrl);
        const int v = db->schemaVersion();
        const std::string line = db->describe() + ": schema version " + std::to_string(v) + " of " + std::to_string(latest);
        if (v == latest) r.ok(what + ": " + line);
        else if (v < latest)
            r.fail(what, line + ": migrations pending (any job applies them; doctor changes nothing)", Severity::Config);
        else r.fail(what, line + ": the database is newer than this program", Severity::Config);
    } catch (const std::exception& e) {
        r.fail(what, oneLine(e.what()), Severity::Server);
    }
}

// ---- SMTP -------------------------------------------------------------------------

struct SmtpProbe {
    std::vector<std::string> replies;
    static size_t onHeader(char* data, size_t size, size_t n, void* user) {
        auto* self = static_cast<SmtpProbe*>(user);
        std::string line(data, size * n);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        if (self->replies.size() < 200) self->replies.push_back(line);
        return size * n;
    }
    static size_t discard(char*, size_t size, size_t n, void*) { return size * n; }
    bool saw(const std::string& code) const {
        return std::any_of(replies.begin(), replies.end(), [&](const std::string& l) { return l.rfind(code, 0) == 0; });
    }
    std::string lastError() const {
        for (auto it = replies.rbegin(); it != replies.rend(); ++it)
            if (!it->empty() && (it->front() == '4' || it->front() == '5')) return *it;
        return "";
    }
};

void checkSmtp(Report& r, const config::Settings& s) {
    const auto& t = s.transport;
    std::string display;
    try {
        mail::TransportSettings copy = t;
        copy.password.clear();
        display = mail::SmtpTransport(copy).describe();  // validates the URL
    } catch (const std::exception& e) {
        r.fail("smtp: " + t.url, oneLine(e.what()), Severity::Config);
        return;
    }
    const std::string what = "smtp: " + display;
    try {
        requireTransportPassword(s);
    } catch (const ConfigError& e) {
        r.fail(what, oneLine(e.what()), Severity::Config);
        return;
    }
    // The URL libcurl gets: scheme://authority/EHLO-name.
    const auto sep = t.url.find("://");
    const std::string scheme = t.url.substr(0, sep);
    std::string rest = t.url.substr(sep + 3);
    const auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash), helo;
    if (slash != std::string::npos) helo = rest.substr(slash + 1);
    if (!helo.empty() && helo.back() == '/') helo.pop_back();
    if (helo.empty()) helo = t.heloName;
    const std::string url = scheme + "://" + authority + "/" + helo;
    const bool implicitTls = scheme == "smtps";

    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    CURL* h = curl_easy_init();
    if (!h) {
        r.fail(what, "curl_easy_init failed", Severity::Server);
        return;
    }
    SmtpProbe probe;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, t.connectTimeoutSeconds);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, t.timeoutSeconds);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &SmtpProbe::onHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &probe);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &SmtpProbe::discard);
    // No MAIL_RCPT and no upload: libcurl connects, EHLO, STARTTLS, AUTH, then
    // sends this command instead of a mail.
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "NOOP");
    if (!implicitTls && t.startTls) curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!t.caFile.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, t.caFile.c_str());
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, t.verifyPeer ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, t.verifyPeer ? 2L : 0L);
    if (!t.username.empty()) {
        curl_easy_setopt(h, CURLOPT_USERNAME, t.username.c_str());
        curl_easy_setopt(h, CURLOPT_PASSWORD, t.password.c_str());
        curl_easy_setopt(h, CURLOPT_SASL_IR, 1L);
    }
    const CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);  // QUIT

    const std::string detail = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
    switch (rc) {
        case CURLE_OK: break;
        case CURLE_LOGIN_DENIED: {
            std::string why = "authentication failed for user '" + t.username + "'";
            if (!probe.lastError().empty()) why += ": " + probe.lastError();
            r.fail(what, oneLine(why), Severity::Server);
            return;
        }
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_OPERATION_TIMEDOUT:
            r.fail(what, oneLine("cannot connect: " + detail), Severity::Server);
            return;
        case CURLE_USE_SSL_FAILED:
            r.fail(what, oneLine("STARTTLS failed (not offered or refused): " + detail), Severity::Server);
            return;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
            r.fail(what, oneLine("TLS failed: " + detail), Severity::Server);
            return;
        default: {
            std::string why = detail;
            if (!probe.lastError().empty()) why += "; server replied: " + probe.lastError();
            r.fail(what, oneLine(why), Severity::Server);
            return;
        }
    }
    std::string line = "connected";
    line += implicitTls ? ", TLS" : t.startTls ? ", TLS (STARTTLS)" : ", no TLS";
    if (t.username.empty()) line += ", no login (transport.username not set)";
    else if (probe.saw("235")) line += ", login ok";
    else {
        r.fail(what, line + ", but the server offered no AUTH: login for '" + t.username + "' was not done",
               Severity::Server);
        return;
    }
    r.ok(what + ": " + line + "; TLS rule: " + mail::describe(s.transportTlsRule));
}

bool writableDirOrCreatable(const std::string& dir, std::string& note) {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec)) {
            note = "exists but is not a directory";
            return false;
        }
        for (const char* sub : {"", "/tmp", "/new"}) {
            const std::string p = dir + sub;
            if (fs::exists(p, ec) && ::access(p.c_str(), W_OK | X_OK) != 0) {
                note = p + " is not writable";
                return false;
            }
        }
        note = "writable";
        return true;
    }
    fs::path p = fs::path(dir).parent_path();
    while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
    if (p.empty()) p = ".";
    if (::access(p.c_str(), W_OK | X_OK) != 0) {
        note = "does not exist and cannot be created (" + p.string() + " is not writable)";
        return false;
    }
    note = "does not exist yet; will be created (" + p.string() + " is writable)";
    return true;
}

void checkTransport(Report& r, const config::Settings& s) {
    const auto& url = s.transport.url;
    if (url.rfind("smtp://", 0) == 0 || url.rfind("smtps://", 0) == 0) return checkSmtp(r, s);
    const std::string dir = url.substr(url.find(':') + 1);
    std::string note;
    if (writableDirOrCreatable(dir, note)) r.ok("transport: " + url + ": " + note);
    else r.fail("transport: " + url, note, Severity::Config);
}

// ---- inbound ----------------------------------------------------------------------

std::string mailboxOf(const std::string& url) {
    const auto sep = url.find("://");
    const auto slash = url.find('/', sep + 3);
    std::string box = slash == std::string::npos ? "" : url.substr(slash + 1);
    while (!box.empty() && box.back() == '/') box.pop_back();
    return box.empty() ? "INBOX" : box;
}

void checkInbound(Report& r, const config::Settings& s, const config::InboundSettings& in) {
    if (in.url.rfind("maildir:", 0) == 0) {
        const std::string what = "inbound." + in.name + ": " + in.url;
        try {
            mail::MaildirSource src(in.url.substr(8));
            const auto unseen = src.listUnseen().size();
            r.ok(what + ": new/ and cur/ exist (" + std::to_string(unseen) + " unseen)");
        } catch (const std::exception& e) {
            r.fail(what, oneLine(e.what()), Severity::Config);
        }
        return;
    }
    const std::string what = "imap inbound." + in.name + ": " + in.url;
    if (!in.username.empty() && in.password.empty()) {
        r.fail(what, "a user is set but no password: set " + in.passwordHint, Severity::Config);
        return;
    }
    std::unique_ptr<mail::InboundSource> src;
    try {
        src = mail::makeImapSource(imapSettings(s, in));
    } catch (const std::exception& e) {
        r.fail(what, oneLine(e.what()), Severity::Config);
        return;
    }
    try {
        const auto st = src->open();
        r.ok(what + ": " + mail::describe(in.tlsRule) + ", " +
             (in.username.empty() ? std::string("no login") : "login ok") + ", mailbox " +
             mailboxOf(in.url) + " exists (" + std::to_string(st.exists) + " messages)");
    } catch (const mail::SourceError& e) {
        std::string kind;
        switch (e.kind()) {
            case mail::SourceError::Kind::Connection: kind = "cannot connect: "; break;
            case mail::SourceError::Kind::Authentication: kind = "login failed: "; break;
            case mail::SourceError::Kind::Configuration: kind = "TLS or mailbox problem: "; break;
            case mail::SourceError::Kind::Server: kind = "server refused: "; break;
            default: break;
        }
        r.fail(what, oneLine(kind + e.what()), Severity::Server);
    } catch (const std::exception& e) {
        r.fail(what, oneLine(e.what()), Severity::Server);
    }
}

// ---- templates --------------------------------------------------------------------

/// Every name a template of `dir` uses: as a variable (a sample string) or only as
/// a section (true), so every section renders.
mail::TemplateData sampleData(const std::string& dir) {
    std::set<std::string> variables, sections;
    static const std::regex tag(R"(\{\{\s*([#^/&{]?)\s*([A-Za-z0-9_]+)\s*\}?\}\})");
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        std::ifstream f(it->path());
        std::stringstream buf;
        buf << f.rdbuf();
        const std::string text = buf.str();
        for (std::sregex_iterator m(text.begin(), text.end(), tag), e; m != e; ++m) {
            const std::string kind = (*m)[1];
            if (kind == "#" || kind == "^" || kind == "/") sections.insert((*m)[2]);
            else variables.insert((*m)[2]);
        }
    }
    mail::TemplateData d;
    for (const auto& s : sections) d.set(s, true);
    for (const auto& v : variables) d.set(v, "sample " + v);
    return d;
}

void checkTemplates(Report& r, const config::Settings& s) {
    const mail::TemplateSet set(s.templatesDir);
    const auto names = set.names();
    if (names.empty()) {
        r.fail("templates: " + s.templatesDir, "no templates", Severity::Config);
        return;
    }
    const mail::TemplateData sample = sampleData(s.templatesDir);
    for (const auto& name : names) {
        const auto langs = set.languages(name);
        if (std::find(langs.begin(), langs.end(), "en") == langs.end())
            r.fail("templates: " + name, s.templatesDir + "/" + name + "/en.txt.mustache: missing (en is the fallback)",
                   Severity::Config);
        for (const auto& lang : langs) {
            const std::string what = "templates: " + name + " " + lang;
            try {
                const auto m = set.render(name, lang, sample);
                if (m.subject.empty())
                    r.fail(what, s.templatesDir + "/" + name + "/" + lang + ".subject.mustache: renders empty",
                           Severity::Config);
                else r.ok(what);
            } catch (const std::exception& e) {
                r.fail(what, oneLine(e.what()), Severity::Config);
            }
        }
    }
}

int runDoctor(CommandContext& app, const Args&) {
    Report r(app.out());
    const config::Settings* s = nullptr;
    try {
        s = &app.settings();
        r.ok("config: " + s->configFile);
    } catch (const std::exception& e) {
        r.fail("config", oneLine(e.what()), Severity::Config);
    }
    if (!s) {
        for (const char* what : {"database", "transport", "inbound", "templates"})
            r.skip(what, "needs a valid configuration");
    } else {
        checkDatabase(r, *s);
        checkTransport(r, *s);
        for (const auto& in : s->inbound) checkInbound(r, *s, in);
        checkTemplates(r, *s);
    }
    app.err() << "doctor: " << (r.failed() ? std::to_string(r.failed()) + " failed" : std::string("all checks passed"))
              << (r.skipped() ? ", " + std::to_string(r.skipped()) + " skipped" : std::string()) << "\n";
    return r.exitCode();
}

}  // namespace

std::vector<Command> doctorCommands() {
    return {
        {"doctor", "", "check configuration, database, mail servers and templates",
         "Checks, one line each (\"ok   WHAT\", \"FAIL WHAT: WHY\", \"skip WHAT: WHY\"), without\n"
         "stopping at the first failure and without changing anything: the configuration\n"
         "(unknown keys, bad values, with file and line), the database (migrations current;\n"
         "it is not migrated), the transport (SMTP: connect, TLS, AUTH with the configured\n"
         "user; spool: directory writable), every inbound mailbox (IMAP: login and the\n"
         "mailbox exists; Maildir: new/ and cur/ exist) and every template in every\n"
         "language rendered with sample data. Passwords are never printed.\n"
         "Exit 0 when all pass; 78 when a configuration, migration or template check failed\n"
         "(also a user without a password); else 69 when a server check failed (cannot\n"
         "connect, TLS, login, mailbox; a database that cannot be opened). 78 wins over 69.",
         nullptr, 0, 0, runDoctor},
    };
}

}  // namespace sm::app
