// Incidents (support cases), their message thread, and the links between sender
// addresses and contracts (DOMAIN.md flows 5-7).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/database.h"

namespace sm::store {

struct IncidentRow {
    std::int64_t id = 0;
    std::string caseNumber;
    std::int64_t contractRef = 0;
    std::int64_t inboundRef = 0;
    std::string requesterEmail;
    std::string product, usageType, problemType, category, severity, description, attachments;
    std::string state = "open";
    std::string closureKind;
    int responseHours = 0;
    std::int64_t dueAt = 0;
    std::int64_t createdAt = 0;
};

class Incidents {
public:
    explicit Incidents(Database& db) : db_(db) {}

    /// Inserts the incident with its case number (domain::formatCaseNumber of the
    /// caseYear and the row id, which is drawn before the insert: no second write of
    /// the row). Returns the row with id and case number set.
    IncidentRow create(IncidentRow row, const std::string& caseYear);
    std::optional<IncidentRow> byCaseNumber(const std::string& caseNumber);
    std::optional<IncidentRow> byId(std::int64_t id);
    /// The incident whose thread holds this Message-ID (ours or the requester's).
    std::optional<IncidentRow> byThreadMessageId(const std::string& messageId);
    /// Sent without waiting (CachedQuery::send), as is link().
    void addMessage(std::int64_t incidentRef, const std::string& direction, const std::string& messageId,
                    std::int64_t inboundRef);
    /// A mail received (inboundRef) and our answer to it (none when answerMessageId
    /// is empty) added to the thread in one statement, sent without waiting.
    void addExchange(std::int64_t incidentRef, const std::string& receivedMessageId, std::int64_t inboundRef,
                     const std::string& answerMessageId);
    int threadLength(std::int64_t incidentRef);
    std::int64_t count();

    /// Sender links: an address that had a request accepted for a contract, unless the
    /// partner's CRM no longer lists it (ReferenceData::deactivateContact): such an
    /// address is never linked again. One statement, sent without waiting (the check of
    /// the contact inside it: on PostgreSQL no round trip of its own).
    void link(const std::string& email, std::int64_t contractRef, const std::string& partnerId);
    std::vector<std::int64_t> linkedContracts(const std::string& email);

    // ---- closure and listing (DOMAIN.md flows 8 and 10) ----

    /// Closes the incident if it is open: state closed, closure kind, note and time.
    /// Returns false (and changes nothing) when it was not open.
    bool close(std::int64_t id, const std::string& closureKind, const std::string& note, std::int64_t closedAt);
    /// The closure note and time (0 while open) of an incident.
    std::string closureNote(std::int64_t id);
    std::int64_t closedAt(std::int64_t id);
    /// Incidents by id, optionally only of one contract (0 = all) and in one state ("" = all).
    std::vector<IncidentRow> list(std::int64_t contractRef = 0, const std::string& state = "");
    /// The Message-IDs of a case's thread in order, of one direction ("in", "out") or all ("").
    std::vector<std::string> threadMessageIds(std::int64_t incidentRef, const std::string& direction = "");
    /// A case's thread in order: who wrote (direction "in" or "out"), when, and the Message-ID.
    struct ThreadEntry {
        std::string direction, messageId;
        std::int64_t inboundRef = 0, createdAt = 0;
    };
    std::vector<ThreadEntry> thread(std::int64_t incidentRef);

private:
    Database& db_;
};

}  // namespace sm::store
