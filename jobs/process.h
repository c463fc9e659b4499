// process: pending inbound mail becomes incidents, thread entries, contact-state
// changes and replies (DOMAIN.md flows 5-7 and "Mail hygiene").
//
// One savepoint per message inside one transaction per page (process.batch):
// whatever the message causes (the incident, the ledger debit, the sender link,
// the reply in the outbox, the bounce mark) and the inbound row's end state
// commit together, so a crash repeats a message whole or not at all, and an
// incident is debited at most once (the debit's ledger key is the inbound row).
// Two threads: a helper parses and classifies the next message and renders the
// answers while this thread writes (jobs/process/second_core.h); a request's answer
// is inserted after the next message's savepoint, in order, before the page commits.
// On PostgreSQL a request whose contract balance another worker holds (until that
// worker's page commits) is deferred to a later page of the same run, not waited for.
//
// Never answered: bounces (they mark the contact bouncing and tell the
// administrators), auto-replies, list and bulk mail, our own mail, and any sender
// past the hourly reply limit. A message that cannot be parsed safely is
// quarantined with the reason and the run goes on.
#pragma once

#include "jobs/progress.h"

#include <cstdint>
#include <string>
#include <vector>

#include <Poco/Logger.h>
#include <Poco/Timestamp.h>

#include "config/settings.h"
#include "mail/templates.h"
#include "store/database.h"

namespace sm::jobs {

struct ProcessReport {
    int processed = 0;
    int accepted = 0;        ///< new incidents
    int refused = 0;         ///< requests answered with a reason
    int followUps = 0;
    int bounces = 0;
    int ignored = 0;         ///< auto-replies, junk, own mail, not yet handled classes
    int quarantined = 0;
    int duplicates = 0;
    int rateLimited = 0;     ///< replies not sent because of the limit
};

ProcessReport process(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                      Poco::Logger& log, const Poco::Timestamp& now = Poco::Timestamp(),
                      ProgressSink* progress = nullptr);

/// What process would make of one pending message (process --dry-run).
struct DryRunOutcome {
    std::int64_t inboundId = 0;
    std::string sender;
    std::string subject;
    std::string state;           ///< the end state it would get: done, quarantined, ...
    std::string classification;
    std::string reason;
    struct Answer {
        std::string kind;        ///< the outbox kind: confirmation, refusal, ...
        std::vector<std::string> recipients;
        std::string subject;
    };
    std::vector<Answer> answers;  ///< every mail it would queue
    std::string error;            ///< the handling failed (the real run would stop here)
};

/// Runs the handlers on every pending message inside one transaction that is
/// rolled back: the real rules and templates on the real queue, nothing changed
/// (no incident, no debit, no reply, no state). Logs nothing of the handling.
std::vector<DryRunOutcome> processDryRun(store::Database& db, const config::Settings& settings,
                                         const mail::TemplateSet& templates,
                                         const Poco::Timestamp& now = Poco::Timestamp());

}  // namespace sm::jobs
