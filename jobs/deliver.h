// deliver: due outbox rows go out over delivery.connections connections at once
// (one reused SMTP connection each, on a thread of its own; for a spool, that
// many writers). Each outcome is committed as soon as it is known:
//   accepted          → sent
//   4xx / no server   → retried later with exponential back-off (same bytes,
//                       same Message-ID); parked once it has failed for longer
//                       than delivery.give_up_after
//   5xx               → parked with the server's reply
// A connection the server cut (or closed with 421) is reopened for its next
// mail. When the server cannot be reached (no connection, a timeout, a reopened
// connection failing again) the run stops at once (the rest stays queued,
// untouched) and reports it, so the caller exits with "temporary".
//
// Threads: only the calling thread touches the database. It claims pages of due
// rows, hands each mail to a connection and records the outcomes that come back,
// a transaction per batch of them. Mails to one recipient keep their order: while
// a mail to a recipient is on a connection, the next mail to that recipient goes
// to the same connection, after it.
#pragma once

#include "jobs/progress.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <Poco/Logger.h>

#include "config/settings.h"
#include "jobs/id_mail.h"
#include "mail/transport.h"
#include "store/database.h"

namespace sm::jobs {

struct DeliveryReport {
    int sent = 0;
    int retried = 0;
    int parked = 0;
    /// Claimed mails not sent because the claim lapsed and another worker took them.
    int takenOver = 0;
    bool serverUnavailable = false;
    std::string lastError;
    /// Mails each connection sent, retried or parked, in connection order.
    std::vector<int> perConnection;
};

/// Seconds to wait before attempt number `attempts + 1`, given `attempts` so far.
std::int64_t retryDelaySeconds(const config::DeliverySettings& settings, int attempts);

/// Makes the transport of one connection (for SMTP a libcurl handle that keeps its
/// own connection; for a spool another writer into the same directory).
using NewConnection = std::function<std::unique_ptr<mail::Transport>()>;

/// Sends over settings.connections connections, each a transport made by
/// newConnection, all made in the calling thread before the first mail (what
/// newConnection throws propagates). One mail goes out alone on the first connection
/// until the server has answered, so an unreachable server costs one mail's attempt.
/// limit: stop after this many mails (0 = until no row is due). renderer gives the
/// bytes of a row queued without them (an activation's ID mail, jobs/id_mail.h);
/// nullptr: such a row is parked with the reason. A row that cannot be rendered is
/// parked with the reason.
/// Throws store::RunInterrupted (the run lost its job lease) and the store's
/// exceptions; the mails in flight then finish first (each bounded by the
/// transport's timeout) and are not marked: they go out again (same Message-ID).
DeliveryReport deliver(store::Database& db, const config::DeliverySettings& settings, const NewConnection& newConnection,
                       Poco::Logger& log, int limit = 0, ProgressSink* progress = nullptr,
                       const OutboxRenderer* renderer = nullptr);

/// The same over one transport the caller owns and keeps (settings.connections is
/// not used): for callers that already hold a transport.
DeliveryReport deliver(store::Database& db, const config::DeliverySettings& settings, mail::Transport& transport,
                       Poco::Logger& log, int limit = 0, ProgressSink* progress = nullptr,
                       const OutboxRenderer* renderer = nullptr);

}  // namespace sm::jobs
