// SMTP submission with libcurl over ONE easy handle kept for the object's
// lifetime: the connection (and its TLS session and AUTH) stays open between
// mails and libcurl reuses it; after an error libcurl reconnects on the next send.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mail/transport.h"

namespace sm::mail {

/// smtp://host[:port][/ehlo-name] (STARTTLS when settings.startTls) or
/// smtps://host[:port][/ehlo-name] (implicit TLS). The EHLO name is the URL path
/// when the URL has one, else settings.heloName. Credentials never come from the
/// URL (user:pass@host is rejected). Not thread-safe: one object per thread.
///
/// Outcomes of send():
///  - accepted: Sent, reply = the server's final reply ("250 2.0.0 Ok: queued as X")
///  - any 4xx reply (also at RCPT): TemporaryFailure; 421 also sets serverUnavailable
///    and connectionLost
///  - any 5xx reply (also at RCPT): PermanentFailure. One rejected recipient aborts
///    the whole transaction (nothing is sent to anyone), so a retry is clean.
///  - no server reply to blame (connect/resolve/TLS/timeout/lost connection) and
///    authentication failure: TemporaryFailure with serverUnavailable = true; a
///    connection that had been answering and then broke (send/receive error, closed
///    without a reply) also sets connectionLost: the next send opens a fresh one.
class SmtpTransport final : public Transport {
public:
    /// Throws std::invalid_argument for a malformed or non-SMTP URL.
    explicit SmtpTransport(TransportSettings settings);
    ~SmtpTransport() override;
    SmtpTransport(const SmtpTransport&) = delete;
    SmtpTransport& operator=(const SmtpTransport&) = delete;

    DeliveryOutcome send(const Envelope& envelope, std::string_view messageId,
                         std::string_view bytes) override;
    std::string describe() const override;

    /// How many new connections libcurl opened so far (1 after any number of
    /// successful sends over one kept connection). For tests and metrics.
    long connectionsOpened() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sm::mail
