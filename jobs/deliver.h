// deliver: due outbox rows go out through one transport (one reused SMTP
// connection). Each outcome is committed as soon as it is known:
//   accepted          → sent
//   4xx / no server   → retried later with exponential back-off (same bytes,
//                       same Message-ID); parked once it has failed for longer
//                       than delivery.give_up_after
//   5xx               → parked with the server's reply
// When the server cannot be reached the run stops at once (the rest stays
// queued, untouched) and reports it, so the caller exits with "temporary".
#pragma once

#include "jobs/progress.h"

#include <string>

#include <Poco/Logger.h>

#include "app/config.h"
#include "jobs/id_mail.h"
#include "mail/transport.h"
#include "store/database.h"

namespace sm::jobs {

struct DeliveryReport {
    int sent = 0;
    int retried = 0;
    int parked = 0;
    bool serverUnavailable = false;
    std::string lastError;
};

/// Seconds to wait before attempt number `attempts + 1`, given `attempts` so far.
std::int64_t retryDelaySeconds(const app::DeliverySettings& settings, int attempts);

/// limit: stop after this many mails (0 = until no row is due). renderer gives the
/// bytes of a row queued without them (an activation's ID mail, jobs/id_mail.h);
/// nullptr: such a row is parked with the reason. A row that cannot be rendered is
/// parked with the reason.
DeliveryReport deliver(store::Database& db, const app::DeliverySettings& settings, mail::Transport& transport,
                       Poco::Logger& log, int limit = 0, ProgressSink* progress = nullptr,
                       const OutboxRenderer* renderer = nullptr);

}  // namespace sm::jobs
