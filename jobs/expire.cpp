#include "jobs/expire.h"
#include "jobs/outgoing.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <Poco/Data/RecordSet.h>

#include "domain/dates.h"
#include "domain/id_delivery.h"
#include "mail/compose.h"
#include "store/contracts.h"
#include "store/outbox.h"
#include "store/reference_data.h"

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::jobs {
namespace {

constexpr int kBatch = 500;  // contracts per transaction

// The columns of a contract the job needs (never the IDs themselves).
struct Due {
    std::int64_t id = 0;
    std::string partnerId;
    std::string locationId;
    std::string displayName;
    std::string expiresOn;
};

// claim: lock the page's contracts for the caller's transaction; on PostgreSQL another
// worker's expire skips them (Database::claimClause).
std::vector<Due> page(store::Database& db, const std::string& where, const std::vector<std::string>& dates,
                      std::int64_t afterId, bool claim) {
    Statement st(db.session());
    std::vector<std::string> values = dates;
    int limit = kBatch;
    st << db.sql("SELECT id, partner_id, location_id, display_name, expires_on FROM contracts WHERE state = 'active' "
                 "AND " + where + " AND id > ? ORDER BY id LIMIT ?" + (claim ? db.claimClause() : ""));
    for (auto& v : values) st, use(v);
    st, use(afterId), use(limit);
    st.execute();
    RecordSet rs(st);
    std::vector<Due> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        Due d;
        d.id = rs[0].convert<std::int64_t>();
        d.partnerId = rs[1].convert<std::string>();
        d.locationId = rs[2].convert<std::string>();
        d.displayName = rs[3].convert<std::string>();
        d.expiresOn = rs[4].convert<std::string>();
        out.push_back(std::move(d));
    }
    return out;
}

std::set<int> remindersRecorded(store::Database& db, std::int64_t contractRef) {
    std::vector<int> days;
    db.session() << db.sql("SELECT days_before FROM expiry_reminders WHERE contract_ref = ?"), use(contractRef),
        into(days), now;
    return {days.begin(), days.end()};
}

void recordReminder(store::Database& db, std::int64_t contractRef, int daysBefore, std::int64_t sentAt) {
    db.session() << db.sql("INSERT INTO expiry_reminders (contract_ref, days_before, sent_at) VALUES (?, ?, ?)"),
        use(contractRef), use(daysBefore), use(sentAt), now;
}

store::OutboxRow buildReminder(const config::Settings& settings, const mail::TemplateSet& templates,
                               const domain::Partner& partner, const Due& contract, const domain::Contact& primary,
                               int daysLeft, int incidentsLeft, const Poco::Timestamp& now) {
    mail::TemplateData data;
    if (primary.name.empty()) data.set("contact_name", false);  // an empty string would open the section
    else data.set("contact_name", primary.name);
    data.set("partner_name", partner.name);
    data.set("display_name", contract.displayName);  // the Access ID masked; the IDs themselves never
    data.set("expires_on", contract.expiresOn);
    data.set("days_left", std::to_string(daysLeft));
    data.set("incidents_left", std::to_string(incidentsLeft));
    data.set("support_address", settings.supportAddress);
    auto rendered = templates.render("expiry_reminder", primary.language, data);

    auto msg = messageFrom(settings, rendered, now);
    msg.to.push_back({primary.name, primary.email});
    return queuedRow(settings, msg, "expiry_reminder", contract.id);
}

/// The notice that a contract has expired, to its partner's primary contact; none
/// (logged and counted as a problem) when the partner has no primary contact.
void queueExpiryNotice(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                       const Due& c, int writtenOff, const Poco::Timestamp& now, Poco::Logger& log,
                       ExpiryReport& report) {
    store::ReferenceData ref(db);
    auto partner = ref.partner(c.partnerId);
    std::optional<domain::Location> location;
    if (!c.locationId.empty()) location = ref.location(c.locationId);
    const auto contacts = ref.contactsOf(c.partnerId);  // r points into it
    domain::IdRecipients r;
    if (partner)
        r = domain::idRecipients(*partner, location ? &*location : nullptr, contacts,
                                 domain::IdDeliveryPolicy{false, nullptr});
    if (!partner || !r.primary) {
        const std::string why = partner ? r.problem : "partner " + c.partnerId + " is unknown";
        report.problems.push_back("expiry notice for " + c.displayName + " not sent: " + why);
        log.warning("expiry notice for " + c.displayName + " not sent: " + why);
        return;
    }
    const domain::Contact& primary = *r.primary;
    mail::TemplateData data;
    if (primary.name.empty()) data.set("contact_name", false);
    else data.set("contact_name", primary.name);
    data.set("partner_name", partner->name);
    data.set("display_name", c.displayName);
    data.set("expires_on", c.expiresOn);
    data.set("incidents_written_off", std::to_string(writtenOff));
    data.set("support_address", settings.supportAddress);
    auto msg = messageFrom(settings, templates.render("contract_expired", primary.language, data), now);
    msg.to.push_back({primary.name, primary.email});
    store::Outbox(db).enqueue(queuedRow(settings, msg, "contract_expired", c.id));
    ++report.noticesQueued;
}

void expireContracts(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                     const std::string& today, const Poco::Timestamp& nowAt, bool dryRun, Poco::Logger& log,
                     ExpiryReport& report) {
    store::Contracts contracts(db);
    std::int64_t afterId = 0;
    for (;;) {
        // Read inside the transaction, so the state seen is the state changed.
        std::unique_ptr<store::Transaction> tx;
        if (!dryRun) tx = std::make_unique<store::Transaction>(db);
        auto due = page(db, "expires_on <= ?", {today}, afterId, !dryRun);
        if (due.empty()) break;
        afterId = due.back().id;
        for (const auto& c : due) {
            const int balance = dryRun ? contracts.balance(c.id) : contracts.lockedBalance(c.id);
            if (dryRun) {
                report.dryRunLines.push_back("would expire " + c.displayName + " (expires on " + c.expiresOn + ")" +
                                             (balance > 0 ? ", writing off " + std::to_string(balance) + " incidents"
                                                          : ""));
            } else {
                std::int64_t id = c.id;
                Statement up(db.session());
                up << db.sql("UPDATE contracts SET state = 'expired' WHERE id = ? AND state = 'active'"), use(id);
                const bool changed = up.execute() > 0;
                if (balance > 0 &&
                    !contracts.appendLedger(c.id, -balance, "expired " + c.expiresOn + ": remainder written off",
                                            "writeoff:contract:" + std::to_string(c.id)))
                    log.warning("contract " + c.displayName + ": its write-off was already in the ledger");
                log.information("expired " + c.displayName + " (expires on " + c.expiresOn + ")" +
                                (balance > 0 ? ", " + std::to_string(balance) + " incidents written off" : ""));
                // In the same transaction as the state: told once, when it changed.
                if (changed) queueExpiryNotice(db, settings, templates, c, std::max(balance, 0), nowAt, log, report);
            }
            ++report.expired;
            if (balance > 0) {
                ++report.writtenOff;
                report.incidentsWrittenOff += balance;
            }
        }
        if (tx) tx->commit();
    }
}

// Everything the reminders of one partner need, loaded once per group.
struct PartnerView {
    domain::Partner partner;
    std::vector<domain::Contact> contacts;
};

void queueReminders(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                    const std::string& today, const Poco::Timestamp& now, bool dryRun, Poco::Logger& log,
                    ExpiryReport& report) {
    std::vector<int> days = settings.expiryReminderDays;
    std::sort(days.begin(), days.end());
    days.erase(std::unique(days.begin(), days.end()), days.end());
    if (days.empty()) return;
    const std::string horizon = domain::addDays(today, days.back());
    const std::int64_t sentAt = now.epochTime();

    store::Contracts contracts(db);
    store::ReferenceData ref(db);
    store::Outbox outbox(db);
    // The reminder goes to the primary only: no same-country extras.
    const domain::IdDeliveryPolicy primaryOnly{false, nullptr};

    std::int64_t afterId = 0;
    for (;;) {
        std::unique_ptr<store::Transaction> tx;
        if (!dryRun) tx = std::make_unique<store::Transaction>(db);
        auto due = page(db, "expires_on > ? AND expires_on <= ?", {today, horizon}, afterId, !dryRun);
        if (due.empty()) break;
        afterId = due.back().id;
        std::map<std::string, std::optional<PartnerView>> partners;

        for (const auto& c : due) {
            const int daysLeft = domain::daysBetween(today, c.expiresOn);
            const auto recorded = remindersRecorded(db, c.id);
            std::vector<int> dueDays;  // ascending: the most urgent first
            for (int n : days)
                if (daysLeft <= n && !recorded.count(n)) dueDays.push_back(n);
            if (dueDays.empty()) continue;
            const int send = dueDays.front();

            auto& view = partners[c.partnerId];
            if (!view) {
                auto p = ref.partner(c.partnerId);
                if (p) view = PartnerView{*p, ref.contactsOf(c.partnerId)};
            }
            std::string problem;
            std::optional<domain::Location> location;
            if (!view) problem = "partner " + c.partnerId + " is unknown";
            else if (!c.locationId.empty()) {
                location = ref.location(c.locationId);
                if (!location) problem = "location " + c.locationId + " is unknown";
            }
            domain::IdRecipients recipients;
            if (problem.empty()) {
                recipients = domain::idRecipients(view->partner, location ? &*location : nullptr, view->contacts,
                                                  primaryOnly);
                if (!recipients.primary) problem = recipients.problem;
            }
            if (!problem.empty()) {
                // Nothing recorded: the reminder goes out once a primary contact is known.
                report.problems.push_back("reminder for " + c.displayName + " (" + std::to_string(send) +
                                          " days) not sent: " + problem);
                continue;
            }
            const domain::Contact& primary = *recipients.primary;
            const int incidentsLeft = contracts.balance(c.id);
            const int skipped = static_cast<int>(dueDays.size()) - 1;

            if (dryRun) {
                std::string line = "would remind " + primary.email + " that " + c.displayName + " expires on " +
                                   c.expiresOn + " (" + std::to_string(daysLeft) + " days left, " +
                                   std::to_string(send) + "-day reminder";
                if (skipped) {
                    line += "; skipping the";
                    for (std::size_t i = 1; i < dueDays.size(); ++i)
                        line += (i > 1 ? "," : "") + std::string(" ") + std::to_string(dueDays[i]);
                    line += "-day one" + std::string(skipped > 1 ? "s" : "");
                }
                report.dryRunLines.push_back(line + ")");
            } else {
                outbox.enqueue(buildReminder(settings, templates, view->partner, c, primary, daysLeft, incidentsLeft,
                                             now));
                recordReminder(db, c.id, send, sentAt);
                for (std::size_t i = 1; i < dueDays.size(); ++i) recordReminder(db, c.id, dueDays[i], 0);
                log.information("expiry reminder (" + std::to_string(send) + " days) for " + c.displayName +
                                " queued to " + primary.email + ", " + std::to_string(daysLeft) + " days left" +
                                (skipped ? ", " + std::to_string(skipped) + " earlier reminder(s) skipped" : ""));
            }
            ++report.remindersQueued;
            report.remindersSkipped += skipped;
        }
        if (tx) tx->commit();
    }
}

}  // namespace

ExpiryReport expire(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                    Poco::Logger& log, const Poco::Timestamp& now, bool dryRun) {
    ExpiryReport report;
    const std::string today = domain::isoDate(now);
    expireContracts(db, settings, templates, today, now, dryRun, log, report);
    queueReminders(db, settings, templates, today, now, dryRun, log, report);
    for (const auto& p : report.problems) log.warning(p);
    return report;
}

}  // namespace sm::jobs
