// expire: contracts past their validity, and the reminders before (DOMAIN.md flow 9).
//
// 1. Expiry. An active contract whose expires_on (the first day it is no longer
//    valid) is today or earlier becomes `expired`; if its balance (the ledger sum)
//    is positive, the remainder is written off with one ledger row of -balance,
//    entry key "writeoff:contract:<id>". Contracts are changed in groups, one
//    transaction per group; a second run finds nothing to do. Requests naming an
//    expired contract are refused with the expiry reason (domain/requests).
// 2. Reminders. For each configured N (expiry.reminder_days, default 30 and 7), an
//    active contract with expires_on - today <= N days gets one reminder for N,
//    mailed to the primary contact the ID rules name (HQ primary; the location
//    primary for a kit; never the regional extras). The outbox row and the
//    expiry_reminders row (contract, N) are written in one transaction, so each
//    reminder is queued at most once, whatever crashes or reruns happen. When
//    several are due at once, only the most urgent (smallest N) is sent; the others
//    are recorded as skipped (sent_at = 0) so they are never sent later.
//    A reminder carries only the masked display name, never the IDs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Poco/Logger.h>
#include <Poco/Timestamp.h>

#include "config/settings.h"
#include "mail/templates.h"
#include "store/database.h"

namespace sm::jobs {

struct ExpiryReport {
    int expired = 0;              ///< contracts that became expired
    int writtenOff = 0;           ///< of them, those with a positive remainder written off
    std::int64_t incidentsWrittenOff = 0;  ///< the sum of those remainders
    int remindersQueued = 0;      ///< reminder mails put in the outbox
    int noticesQueued = 0;        ///< "your contract has expired" mails put in the outbox
    int remindersSkipped = 0;     ///< less urgent reminders recorded as never to be sent
    std::vector<std::string> problems;     ///< reminders that could not be sent, with why
    std::vector<std::string> dryRunLines;  ///< what would happen (dry run)
};

/// Runs both steps at `now` (its UTC date is "today"). dryRun: reports what would
/// happen in dryRunLines and the counts, and changes nothing.
ExpiryReport expire(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                    Poco::Logger& log, const Poco::Timestamp& now = Poco::Timestamp(), bool dryRun = false);

}  // namespace sm::jobs
