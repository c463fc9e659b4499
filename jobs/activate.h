// activate: pending renewals become contracts (DOMAIN.md flow 2).
//
// Gold, silver, SCS, ASfP and competency-kit renewals are activated by the batch;
// Action Pack renewals wait for a request and are activated here only when an
// administrator names the partner (--partner). Each activation writes, in one
// transaction with the renewal's state change: the contract with fresh Access and
// Contract IDs, the ledger grant (+N), and the ID mail's outbox row (without its
// bytes: deliver renders the mail from the contract, jobs/id_mail.h). Renewals
// are committed in groups (settings.activation.batch) for speed; a crash loses at
// most the uncommitted group, which the next run activates (nothing twice: the
// renewal is pending until its contract commits).
// A renewal that cannot be activated (no plan, no primary contact) stays pending
// and is reported with the reason; one pending past the four-week promise is
// reported as overdue.
#pragma once

#include "jobs/progress.h"

#include <optional>
#include <string>
#include <vector>

#include <Poco/Logger.h>
#include <Poco/Timestamp.h>

#include "config/settings.h"
#include "domain/model.h"
#include "domain/secure_random.h"
#include "mail/templates.h"
#include "store/database.h"

namespace sm::jobs {

struct ActivationOptions {
    bool dryRun = false;
    std::string partnerId;  ///< non-empty: only this partner, Action Pack included
    std::optional<domain::Benefit> onlyBenefit;  ///< only renewals of this benefit
    bool ownTransactions = true;  ///< false: run inside the caller's transaction (one message's)
    ProgressSink* progress = nullptr;  ///< told the pending count, then each committed group
};

struct ActivationProblem {
    std::int64_t renewalId = 0;
    std::string partnerId;
    std::string benefit;
    std::string reason;
};

struct ActivationReport {
    int activated = 0;
    int waitingForRequest = 0;   ///< Action Pack renewals left for a request
    std::vector<ActivationProblem> notActivated;  ///< stayed pending, with why
    std::vector<ActivationProblem> overdue;       ///< pending beyond the promise
    std::vector<std::string> dryRunLines;         ///< what would happen (dry run)
};

ActivationReport activate(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                          domain::RandomSource& random, const ActivationOptions& options, Poco::Logger& log,
                          const Poco::Timestamp& now = Poco::Timestamp());

}  // namespace sm::jobs
