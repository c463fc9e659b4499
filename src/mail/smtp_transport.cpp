#include "mail/smtp_transport.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace sm::mail {

namespace {

void ensureCurlGlobalInit() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (rc != CURLE_OK)
        throw std::runtime_error(std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool hasControlOrSpace(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

/// EHLO argument: a domain or an address literal ([127.0.0.1], [IPv6:...]).
bool validHeloName(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-' || c == '[' || c == ']' || c == ':' || c == '_';
    });
}

struct SmtpUrl {
    std::string scheme;     // "smtp" or "smtps"
    std::string authority;  // host[:port] as given
    std::string heloName;   // from the path; may be empty
};

[[noreturn]] void badUrl(const std::string& url, const std::string& why) {
    throw std::invalid_argument("invalid SMTP URL '" + url + "': " + why);
}

SmtpUrl parseSmtpUrl(const std::string& url) {
    SmtpUrl u;
    const auto sep = url.find("://");
    {
        // Never accept (nor echo) credentials here: the URL ends up in logs and describe().
        const std::size_t from = sep == std::string::npos ? 0 : sep + 3;
        const std::size_t end = url.find_first_of("/?#", from);
        if (url.substr(from, end == std::string::npos ? std::string::npos : end - from).find('@') !=
            std::string::npos)
            throw std::invalid_argument("invalid SMTP URL: credentials in the URL are not allowed "
                                        "(use the username/password settings)");
    }
    if (sep == std::string::npos || sep == 0) badUrl(url, "expected smtp://host[:port] or smtps://host[:port]");
    u.scheme = lower(url.substr(0, sep));
    if (u.scheme != "smtp" && u.scheme != "smtps")
        badUrl(url, "scheme '" + u.scheme + "' is not smtp or smtps");
    std::string rest = url.substr(sep + 3);
    if (hasControlOrSpace(rest)) badUrl(url, "contains spaces or control characters");
    if (rest.find_first_of("?#") != std::string::npos) badUrl(url, "query or fragment not allowed");
    const auto slash = rest.find('/');
    u.authority = rest.substr(0, slash);
    if (slash != std::string::npos) {
        u.heloName = rest.substr(slash + 1);
        if (!u.heloName.empty() && u.heloName.back() == '/') u.heloName.pop_back();
        if (!u.heloName.empty() && !validHeloName(u.heloName))
            badUrl(url, "path (EHLO name) '" + u.heloName + "' is not a domain name");
    }
    if (u.authority.empty()) badUrl(url, "missing host");
    std::string host, port;
    if (u.authority.front() == '[') {
        const auto close = u.authority.find(']');
        if (close == std::string::npos) badUrl(url, "unterminated IPv6 address");
        host = u.authority.substr(0, close + 1);
        const std::string after = u.authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') badUrl(url, "garbage after IPv6 address");
            port = after.substr(1);
            if (port.empty()) badUrl(url, "empty port");
        }
    } else {
        const auto colon = u.authority.find(':');
        host = u.authority.substr(0, colon);
        if (colon != std::string::npos) {
            port = u.authority.substr(colon + 1);
            if (port.empty()) badUrl(url, "empty port");
        }
    }
    if (host.empty() || host == "[]") badUrl(url, "missing host");
    for (unsigned char c : host)
        if (!(std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '[' || c == ']' || c == ':'))
            badUrl(url, "invalid character in host name");
    if (!port.empty()) {
        if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
            badUrl(url, "port '" + port + "' is not a number");
        const long p = std::stol(port);
        if (p < 1 || p > 65535) badUrl(url, "port " + port + " out of range");
    }
    return u;
}

bool isReplyCode(std::string_view line) {
    return line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
           std::isdigit(static_cast<unsigned char>(line[1])) &&
           std::isdigit(static_cast<unsigned char>(line[2]));
}

constexpr std::size_t kMaxReplyChars = 2000;

}  // namespace

struct SmtpTransport::Impl {
    TransportSettings settings;  // password wiped once handed to libcurl
    std::string curlUrl;         // scheme://authority/ehlo-name
    std::string displayUrl;      // scheme://authority
    std::string heloName;
    bool implicitTls = false;  // smtps://
    CURL* h = nullptr;
    char errbuf[CURL_ERROR_SIZE] = {};
    long connects = 0;

    // per send
    const char* upPtr = nullptr;
    std::size_t upLeft = 0;
    std::string pending;    // lines of a multi-line reply so far
    std::string lastReply;  // last complete reply ("250 2.0.0 Ok: queued as X")
    int lastCode = 0;
    // the last 4xx/5xx reply: libcurl stops at the failing command, but then sends
    // QUIT and its "221 Bye" would otherwise hide the reply that matters
    std::string errorReply;
    int errorCode = 0;
    int repliesSeen = 0;

    static size_t onRead(char* buf, size_t size, size_t nitems, void* ud) {
        auto* self = static_cast<Impl*>(ud);
        const std::size_t n = std::min(size * nitems, self->upLeft);
        if (n > 0) {
            std::memcpy(buf, self->upPtr, n);
            self->upPtr += n;
            self->upLeft -= n;
        }
        return n;
    }

    // libcurl passes every SMTP response line to the header callback.
    static size_t onHeader(char* data, size_t size, size_t nitems, void* ud) {
        auto* self = static_cast<Impl*>(ud);
        const std::size_t len = size * nitems;
        std::string_view line(data, len);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
        if (!isReplyCode(line)) return len;
        const bool continued = line.size() > 3 && line[3] == '-';
        if (self->pending.empty()) {
            self->pending.assign(line.substr(0, kMaxReplyChars));
        } else if (self->pending.size() < kMaxReplyChars) {
            // "550-5.7.1 first" + "550 5.7.1 second" -> "550-5.7.1 first 5.7.1 second"
            self->pending += ' ';
            self->pending.append(line.substr(std::min<std::size_t>(4, line.size()), kMaxReplyChars));
        }
        if (!continued) {
            self->lastCode = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            self->lastReply = std::move(self->pending);
            self->pending.clear();
            // a multi-line reply keeps its first line's separator: normalise to "NNN text"
            if (self->lastReply.size() > 3 && self->lastReply[3] == '-') self->lastReply[3] = ' ';
            if (self->lastCode >= 400 && self->lastCode < 600) {
                self->errorCode = self->lastCode;
                self->errorReply = self->lastReply;
            }
            ++self->repliesSeen;
        }
        return len;
    }

    template <typename T>
    void set(CURLoption opt, T value, const char* name) {
        const CURLcode rc = curl_easy_setopt(h, opt, value);
        if (rc != CURLE_OK)
            throw std::runtime_error(std::string("SmtpTransport: curl_easy_setopt(") + name +
                                     ") failed: " + curl_easy_strerror(rc));
    }
#define SM_SET(opt, value) set(opt, value, #opt)

    void configure() {
        SM_SET(CURLOPT_URL, curlUrl.c_str());
        SM_SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        SM_SET(CURLOPT_NOSIGNAL, 1L);
        SM_SET(CURLOPT_ERRORBUFFER, errbuf);
        SM_SET(CURLOPT_CONNECTTIMEOUT, settings.connectTimeoutSeconds);
        SM_SET(CURLOPT_TIMEOUT, settings.timeoutSeconds);
        // Every wait for a reply, QUIT at the end included, is bounded by the same
        // timeout (libcurl's default is 120 s, outside CURLOPT_TIMEOUT for QUIT).
        SM_SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, settings.timeoutSeconds);
        SM_SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SM_SET(CURLOPT_UPLOAD, 1L);
        SM_SET(CURLOPT_READFUNCTION, &Impl::onRead);
        SM_SET(CURLOPT_READDATA, this);
        SM_SET(CURLOPT_HEADERFUNCTION, &Impl::onHeader);
        SM_SET(CURLOPT_HEADERDATA, this);
        // One rejected recipient fails the whole transaction (nothing goes to
        // anyone): the outcome then is that recipient's reply, and a retry is clean.
        SM_SET(CURLOPT_MAIL_RCPT_ALLLOWFAILS, 0L);
        if (!implicitTls && settings.startTls)
            SM_SET(CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
        if (!settings.caFile.empty()) SM_SET(CURLOPT_CAINFO, settings.caFile.c_str());
        SM_SET(CURLOPT_SSL_VERIFYPEER, settings.verifyPeer ? 1L : 0L);
        SM_SET(CURLOPT_SSL_VERIFYHOST, settings.verifyPeer ? 2L : 0L);
        if (!settings.username.empty()) {
            SM_SET(CURLOPT_USERNAME, settings.username.c_str());
            SM_SET(CURLOPT_PASSWORD, settings.password.c_str());  // libcurl keeps its own copy
            SM_SET(CURLOPT_SASL_IR, 1L);                            // AUTH PLAIN <ir>: one round trip less
        }
        std::fill(settings.password.begin(), settings.password.end(), '\0');
        settings.password.clear();
        settings.password.shrink_to_fit();
    }
#undef SM_SET

    DeliveryOutcome classify(CURLcode rc) const {
        DeliveryOutcome out;
        if (rc == CURLE_OK) {
            out.status = DeliveryStatus::Sent;
            out.reply = lastReply.empty() ? std::string("250 accepted") : lastReply;
            return out;
        }
        if (rc == CURLE_LOGIN_DENIED) {
            // A configuration problem, not the mail's: stop the batch, retry later.
            out.status = DeliveryStatus::TemporaryFailure;
            out.serverUnavailable = true;
            out.reply = "authentication failed for user '" + settings.username + "' at " + displayUrl;
            if (!errorReply.empty()) out.reply += ": " + errorReply;
            return out;
        }
        if (errorCode != 0) {
            out.reply = errorReply;
            if (errorCode == 421 || errorCode == 530) {
                // 421: server closing the channel; 530: authentication required
                // (our configuration). Neither is this mail's fault.
                out.status = DeliveryStatus::TemporaryFailure;
                out.serverUnavailable = true;
                out.connectionLost = errorCode == 421;
            } else {
                out.status = errorCode >= 500 ? DeliveryStatus::PermanentFailure
                                             : DeliveryStatus::TemporaryFailure;
            }
            return out;
        }
        // No server reply to blame: connection, DNS, TLS, timeout, lost connection.
        out.status = DeliveryStatus::TemporaryFailure;
        out.serverUnavailable = true;
        // The server had been answering on this connection, then it broke (not a
        // timeout, not a failed connect or TLS handshake): a fresh connection may work.
        out.connectionLost = repliesSeen > 0 &&
                             (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING);
        out.reply = std::string(curl_easy_strerror(rc));
        if (errbuf[0] != '\0') out.reply += std::string(": ") + errbuf;
        out.reply += " (" + displayUrl + ", curl error " + std::to_string(static_cast<int>(rc)) + ")";
        if (!lastReply.empty()) out.reply += "; last server reply: " + lastReply;
        return out;
    }

    // After a timeout or a lost connection the server is silent or gone, and the
    // SMTP dialogue is at an unknown point. libcurl may still keep the connection
    // (a timeout waiting for the reply to the final "." leaves it cached) and would
    // send QUIT on it at the next use or at curl_easy_cleanup, then wait for the
    // reply: deliver held its lease for minutes after its summary. Shutting the
    // socket down makes that QUIT fail at once and the next send connect afresh.
    // A reply error (4xx/5xx other than 421) leaves a healthy connection: kept.
    void dropConnection() {
        curl_socket_t sock = CURL_SOCKET_BAD;
        if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &sock) == CURLE_OK && sock != CURL_SOCKET_BAD)
            ::shutdown(sock, SHUT_RDWR);
    }

    CURLcode performOnce(long& newConnections) {
        pending.clear();
        lastReply.clear();
        lastCode = 0;
        errorReply.clear();
        errorCode = 0;
        repliesSeen = 0;
        errbuf[0] = '\0';
        const CURLcode rc = curl_easy_perform(h);
        long nc = 0;
        if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK) newConnections = nc;
        connects += newConnections;
        return rc;
    }
};

SmtpTransport::SmtpTransport(TransportSettings settings) : impl_(std::make_unique<Impl>()) {
    const SmtpUrl u = parseSmtpUrl(settings.url);
    impl_->heloName = u.heloName.empty() ? settings.heloName : u.heloName;
    if (!validHeloName(impl_->heloName))
        throw std::invalid_argument("invalid EHLO name '" + impl_->heloName + "'");
    impl_->implicitTls = u.scheme == "smtps";
    impl_->displayUrl = u.scheme + "://" + u.authority;
    impl_->curlUrl = impl_->displayUrl + "/" + impl_->heloName;
    impl_->settings = std::move(settings);
    ensureCurlGlobalInit();
    impl_->h = curl_easy_init();
    if (impl_->h == nullptr) throw std::runtime_error("SmtpTransport: curl_easy_init failed");
    try {
        impl_->configure();
    } catch (...) {
        curl_easy_cleanup(impl_->h);
        impl_->h = nullptr;
        throw;
    }
}

SmtpTransport::~SmtpTransport() {
    if (impl_ && impl_->h) curl_easy_cleanup(impl_->h);  // sends QUIT on the kept connection
}

DeliveryOutcome SmtpTransport::send(const Envelope& envelope, std::string_view /*messageId*/,
                                    std::string_view bytes) {
    Impl& im = *impl_;
    DeliveryOutcome bad;
    bad.status = DeliveryStatus::PermanentFailure;
    if (envelope.recipients.empty()) {
        bad.reply = "no recipients in the envelope";
        return bad;
    }
    // CR/LF/NUL or spaces in an address would let it inject SMTP commands.
    if (hasControlOrSpace(envelope.from)) {
        bad.reply = "invalid envelope sender (control characters or spaces)";
        return bad;
    }
    curl_slist* rcpts = nullptr;
    for (const std::string& r : envelope.recipients) {
        if (r.empty() || hasControlOrSpace(r)) {
            curl_slist_free_all(rcpts);
            bad.reply = "invalid envelope recipient '" + r + "'";
            for (char& c : bad.reply)
                if (static_cast<unsigned char>(c) < 0x20) c = '?';
            return bad;
        }
        curl_slist* next = curl_slist_append(rcpts, r.c_str());
        if (next == nullptr) {
            curl_slist_free_all(rcpts);
            return DeliveryOutcome{DeliveryStatus::TemporaryFailure, "out of memory", false};
        }
        rcpts = next;
    }
    // An empty string makes libcurl send the null reverse-path "MAIL FROM:<>".
    curl_easy_setopt(im.h, CURLOPT_MAIL_FROM, envelope.from.c_str());
    curl_easy_setopt(im.h, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(im.h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(bytes.size()));

    CURLcode rc = CURLE_OK;
    for (int attempt = 0; attempt < 2; ++attempt) {
        long newConnections = 0;
        im.upPtr = bytes.data();
        im.upLeft = bytes.size();
        rc = im.performOnce(newConnections);
        // A kept connection the server closed while idle can fail before any reply
        // arrives: nothing was accepted, so one immediate retry on a fresh connection is safe.
        const bool lostConnection =
            rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
        const bool staleReuse = lostConnection && newConnections == 0 && im.repliesSeen == 0;
        if (!staleReuse) break;
    }
    curl_easy_setopt(im.h, CURLOPT_MAIL_RCPT, static_cast<curl_slist*>(nullptr));
    curl_slist_free_all(rcpts);
    DeliveryOutcome outcome = im.classify(rc);
    if (rc != CURLE_OK && (im.errorCode == 0 || im.errorCode == 421)) im.dropConnection();
    return outcome;
}

std::string SmtpTransport::describe() const {
    const Impl& im = *impl_;
    std::string d = im.displayUrl + " (EHLO " + im.heloName;
    const bool implicitTls = im.implicitTls;
    if (implicitTls) d += ", TLS";
    else if (im.settings.startTls) d += ", STARTTLS";
    else d += ", no TLS";
    if (implicitTls || im.settings.startTls) {
        if (!im.settings.verifyPeer) d += ", certificate NOT verified";
        else if (!im.settings.caFile.empty()) d += ", CA " + im.settings.caFile;
    }
    if (!im.settings.username.empty()) d += ", AUTH as " + im.settings.username;
    d += ")";
    return d;
}

long SmtpTransport::connectionsOpened() const { return impl_->connects; }

}  // namespace sm::mail
