// Issue 11: TLS by default. One rule for SMTP, IMAP and doctor: a server that is not on
// the loopback is spoken to over TLS (implicit, or STARTTLS required) unless the operator
// wrote allow_plaintext = true; on the loopback the traffic never leaves the machine, and
// plaintext stays allowed.
#pragma once

#include <string>

namespace sm::mail {

/// localhost, 127.0.0.0/8 or ::1, written as such (a name that resolves there does not
/// count: what it resolves to can change).
bool isLoopbackHost(const std::string& host);

/// The host of smtp://, smtps://, imap:// or imaps:// URL ("" for anything else).
std::string urlHost(const std::string& url);

enum class TlsRule {
    NotNetwork,         ///< maildir:, spool: (no server)
    Implicit,           ///< smtps://, imaps://
    StartTlsRequired,   ///< STARTTLS, the connection fails when it is not offered
    PlaintextLoopback,  ///< no TLS: the server is on the loopback
    PlaintextAllowed,   ///< no TLS to a network server: allow_plaintext = true
};

/// What a connection to url does. startTlsAsked: the configuration's starttls, when
/// it was written (nullptr: not written); a network server gets STARTTLS unless
/// allowPlaintext. Throws std::invalid_argument when starttls = false is written for a
/// network server without allowPlaintext (the configuration asks for what the rule
/// forbids: refused before any connection).
TlsRule tlsRule(const std::string& url, const bool* startTlsAsked, bool allowPlaintext);

/// For doctor and the logs: "TLS", "STARTTLS required", "plaintext (loopback)", ...
std::string describe(TlsRule rule);

}  // namespace sm::mail
