// Closing a case (DOMAIN.md flow 8): an administrator closes an incident as
// decrement (the incident stays used) or non-decrement (the incident is credited
// back to the contract: ledger +1). Either way the requester is told by mail.
//
// One transaction: the incident's closed state, the credit (keyed
// "credit:incident:<id>", so an incident is credited at most once whatever
// happens) and the mail in the outbox commit together or not at all.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <Poco/Logger.h>
#include <Poco/Timestamp.h>

#include "config/settings.h"
#include "mail/templates.h"
#include "store/database.h"

namespace sm::jobs {

enum class ClosureKind { Decrement, NonDecrement };

/// "decrement" / "non_decrement", as stored in incidents.closure_kind.
std::string toString(ClosureKind kind);

/// A closure that cannot be done; the message says why (unknown case, already
/// closed, already credited, never debited). Nothing was changed.
class CaseError : public std::runtime_error {
public:
    enum class Reason { UnknownCase, AlreadyClosed, AlreadyCredited, NeverDebited };
    CaseError(Reason reason, const std::string& message) : std::runtime_error(message), reason_(reason) {}
    Reason reason() const { return reason_; }

private:
    Reason reason_;
};

struct ClosureReport {
    std::string caseNumber;
    std::string contractDisplay;  ///< masked display name
    bool credited = false;        ///< non-decrement: the incident went back to the contract
    bool creditWrittenOff = false;///< ... and was written off again: the contract had expired
    int balance = 0;              ///< the contract's balance after the closure
    std::string recipient;        ///< the requester told, "" when no mail could be queued
    std::string messageId;        ///< of that mail
};

/// Closes `caseNumber`. `note` (may be empty) is stored and told to the requester.
/// Throws CaseError for an unknown or already closed case (nothing changed).
ClosureReport closeCase(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                        const std::string& caseNumber, ClosureKind kind, const std::string& note, Poco::Logger& log,
                        const Poco::Timestamp& now = Poco::Timestamp());

}  // namespace sm::jobs
