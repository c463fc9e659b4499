#include "mail/tls_policy.h"

#include <arpa/inet.h>

#include <stdexcept>

#include <Poco/String.h>
#include <Poco/Exception.h>
#include <Poco/URI.h>

namespace sm::mail {

bool isLoopbackHost(const std::string& hostIn) {
    std::string host = Poco::toLower(hostIn);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost" || host == "localhost.") return true;
    in_addr v4{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}

std::string urlHost(const std::string& url) {
    for (const char* scheme : {"smtp://", "smtps://", "imap://", "imaps://"})
        if (url.rfind(scheme, 0) == 0) {
            try {
                return Poco::URI(url).getHost();
            } catch (const Poco::Exception&) {
                return "";
            }
        }
    return "";
}

TlsRule tlsRule(const std::string& url, const bool* startTlsAsked, bool allowPlaintext) {
    if (url.rfind("smtps://", 0) == 0 || url.rfind("imaps://", 0) == 0) return TlsRule::Implicit;
    if (url.rfind("smtp://", 0) != 0 && url.rfind("imap://", 0) != 0) return TlsRule::NotNetwork;
    const bool asked = startTlsAsked && *startTlsAsked;
    if (asked) return TlsRule::StartTlsRequired;
    const std::string host = urlHost(url);
    if (isLoopbackHost(host)) return TlsRule::PlaintextLoopback;
    if (allowPlaintext) return TlsRule::PlaintextAllowed;
    if (startTlsAsked)  // starttls = false, written, for a server on the network
        throw std::invalid_argument("STARTTLS is off for " + host +
                                    ", which is not on the loopback: passwords and ID mails would cross the network "
                                    "in clear; remove the line (STARTTLS is then required) or set allow_plaintext = "
                                    "true");
    return TlsRule::StartTlsRequired;
}

std::string describe(TlsRule rule) {
    switch (rule) {
        case TlsRule::NotNetwork: return "no server";
        case TlsRule::Implicit: return "TLS (implicit)";
        case TlsRule::StartTlsRequired: return "STARTTLS required";
        case TlsRule::PlaintextLoopback: return "plaintext, allowed on the loopback";
        case TlsRule::PlaintextAllowed: return "PLAINTEXT over the network (allow_plaintext = true)";
    }
    return "";
}

}  // namespace sm::mail
