// Transports hand composed mail to the world: an SMTP server over one reused
// libcurl connection, or a spool/Maildir directory (the embedded default, which
// needs no server). A transport never re-renders: it sends the bytes it is given.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mail/message.h"

namespace sm::mail {

enum class DeliveryStatus {
    Sent,              ///< the server (or the spool) accepted the mail
    TemporaryFailure,  ///< 4xx, connection error, timeout: retry later
    PermanentFailure,  ///< 5xx: park the mail with the server's reply
};

struct DeliveryOutcome {
    DeliveryStatus status = DeliveryStatus::TemporaryFailure;
    std::string reply;           ///< the server's reply text or the local error, for the outbox row
    bool serverUnavailable = false;  ///< could not connect / lost the connection: stop this batch
    /// With serverUnavailable: an open connection broke (cut by the server, or closed
    /// with 421) rather than none could be made; a fresh connection may work, so the
    /// caller may reopen it once for its next mail before giving up.
    bool connectionLost = false;
};

/// Settings for makeTransport(). Credentials are filled in by the caller from the
/// environment or a password file; they never come from the command line.
struct TransportSettings {
    std::string url;            ///< smtp://host:port, smtps://host:port, maildir:/path (or spool:/path)
    bool startTls = false;      ///< smtp:// only: require STARTTLS (the configuration sets it by mail/tls_policy.h)
    bool verifyPeer = true;     ///< TLS certificate and host verification
    std::string caFile;         ///< CA bundle for TLS (empty = system default)
    std::string username;       ///< AUTH user; empty = no AUTH
    std::string password;
    std::string heloName = "supportmail.localdomain";  ///< EHLO name
    long connectTimeoutSeconds = 15;
    long timeoutSeconds = 60;   ///< whole-transaction timeout per mail
};

class Transport {
public:
    virtual ~Transport() = default;
    /// Sends one mail. Never throws for delivery problems: they are outcomes.
    virtual DeliveryOutcome send(const Envelope& envelope, std::string_view messageId,
                                 std::string_view bytes) = 0;
    /// A description safe for logs (no password).
    virtual std::string describe() const = 0;
};

/// Builds the transport named by settings.url. Throws std::invalid_argument for an
/// unknown scheme or a malformed URL.
std::unique_ptr<Transport> makeTransport(const TransportSettings& settings);

}  // namespace sm::mail
