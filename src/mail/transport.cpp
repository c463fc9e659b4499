#include "mail/transport.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "mail/smtp_transport.h"
#include "mail/spool_transport.h"

namespace sm::mail {

namespace {

std::string lowerAscii(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

/// The URL for error messages, with any user:password@ replaced by "***@".
std::string redacted(const std::string& url) {
    const auto sep = url.find("://");
    if (sep == std::string::npos) {  // "user:pw@host" parses as scheme "user"
        const auto at = url.find('@');
        return at == std::string::npos ? url : "***" + url.substr(at);
    }
    const auto end = url.find_first_of("/?#", sep + 3);
    const auto at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at == std::string::npos || at < sep + 3) return url;
    return url.substr(0, sep + 3) + "***" + url.substr(at);
}

/// maildir:/abs, maildir:relative/dir, maildir:///abs (no host part allowed).
std::string spoolPath(const std::string& url, std::size_t colon) {
    std::string path = url.substr(colon + 1);
    if (path.rfind("//", 0) == 0) {
        if (path.rfind("///", 0) != 0)
            throw std::invalid_argument("invalid spool URL '" + url +
                                        "': a host part is not supported (use maildir:/path)");
        path.erase(0, 2);
    }
    if (path.empty())
        throw std::invalid_argument("invalid spool URL '" + url + "': missing directory (use maildir:/path)");
    if (path.find('\0') != std::string::npos)
        throw std::invalid_argument("invalid spool URL: directory contains a NUL byte");
    return path;
}

}  // namespace

std::unique_ptr<Transport> makeTransport(const TransportSettings& settings) {
    const std::string& url = settings.url;
    if (url.empty()) throw std::invalid_argument("empty transport URL (want smtp://, smtps://, maildir: or spool:)");
    const auto colon = url.find(':');
    if (colon == std::string::npos || colon == 0)
        throw std::invalid_argument("invalid transport URL '" + redacted(url) +
                                    "': no scheme (want smtp://host:port, smtps://host:port, maildir:/path or spool:/path)");
    const std::string scheme = lowerAscii(url.substr(0, colon));
    if (scheme == "smtp" || scheme == "smtps") return std::make_unique<SmtpTransport>(settings);
    if (scheme == "maildir" || scheme == "spool")
        return std::make_unique<SpoolTransport>(spoolPath(url, colon));
    throw std::invalid_argument("unknown transport URL scheme '" + scheme + "' in '" + redacted(url) +
                                "' (supported: smtp, smtps, maildir, spool)");
}

}  // namespace sm::mail
