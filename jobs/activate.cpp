#include "jobs/activate.h"

#include <map>
#include <unordered_set>

#include "domain/dates.h"
#include "domain/id_delivery.h"
#include "domain/ids.h"
#include "jobs/id_mail.h"
#include "store/contracts.h"
#include "store/disclosures.h"
#include "store/outbox.h"
#include "store/reference_data.h"
#include "store/renewals.h"

namespace sm::jobs {
namespace {

// Everything activation needs to know about one partner, loaded once per group.
struct PartnerView {
    domain::Partner partner;
    std::vector<domain::Contact> contacts;
};

class IdGenerator {
public:
    IdGenerator(store::Contracts& contracts, domain::RandomSource& random) : contracts_(contracts), random_(random) {}

    // Draws until the ID is free in the store and in the current group (a hash set:
    // a group holds up to activation.batch IDs).
    std::string accessId() {
        for (;;) {
            std::string id = domain::generateAccessId(random_);
            if (usedAccess_.count(id) || contracts_.accessIdExists(id)) continue;
            usedAccess_.insert(id);
            return id;
        }
    }
    std::string contractId() {
        for (;;) {
            std::string id = domain::generateContractId(random_);
            if (usedContract_.count(id) || contracts_.contractIdExists(id)) continue;
            usedContract_.insert(id);
            return id;
        }
    }
    void newGroup() {
        usedAccess_.clear();
        usedContract_.clear();
    }

private:
    store::Contracts& contracts_;
    domain::RandomSource& random_;
    std::unordered_set<std::string> usedAccess_, usedContract_;
};

// Page cache while activation runs (store::PageCacheLimit): the random-key indexes
// of a million contracts and a group's dirty pages fit.
constexpr int kActivationCacheMegabytes = 1024;

std::string describeRecipients(const domain::IdRecipients& r) {
    std::string s = r.primary->email;
    for (const auto* c : r.others) s += ", " + c->email;
    return s;
}

}  // namespace

ActivationReport activate(store::Database& db, const config::Settings& settings, const mail::TemplateSet& templates,
                          domain::RandomSource& random, const ActivationOptions& options, Poco::Logger& log,
                          const Poco::Timestamp& now) {
    ActivationReport report;
    store::Renewals renewals(db);
    store::ReferenceData ref(db);
    store::Contracts contracts(db);
    store::Outbox outbox(db);
    store::Disclosures disclosures(db);
    IdGenerator ids(contracts, random);
    const std::string today = domain::isoDate(now);
    domain::IdDeliveryPolicy policy{settings.activation.regionalRule, &settings.regions};

    // The ID mails are rendered when deliver sends them: a template that cannot
    // render stops the run here, before any contract is written.
    if (!options.dryRun) checkIdMailRenders(settings, templates);
    if (options.progress) options.progress->begin(renewals.countPending(options.partnerId));
    // The Access and Contract IDs are random: each new key lands on any page of its
    // index, so past the connection's 64 MB every insert read a page back from the
    // file (1M contracts: ~100 MB of these two indexes). A cache sized for the run
    // keeps them; it grows only as far as pages are read.
    // Not inside a caller's transaction (process activating one Action Pack keeps its own).
    std::optional<store::PageCacheLimit> cache;
    if (options.ownTransactions && !options.dryRun) cache.emplace(db, kActivationCacheMegabytes);
    std::int64_t afterId = 0;
    for (;;) {
        // The group is read and claimed inside its transaction: on PostgreSQL another
        // worker's activate skips these renewals (store/renewals.h).
        std::unique_ptr<store::Transaction> tx;
        if (!options.dryRun && options.ownTransactions) tx = std::make_unique<store::Transaction>(db);
        auto page = renewals.pending(afterId, settings.activation.batch, options.partnerId,
                                     /*claim=*/!options.dryRun);
        if (page.empty()) break;
        afterId = page.back().id;
        std::map<std::string, std::optional<PartnerView>> partners;
        ids.newGroup();
        for (const auto& r : page) {
            if (options.onlyBenefit && r.benefit != *options.onlyBenefit) continue;
            const std::string benefit = domain::toString(r.benefit);
            auto problem = [&](const std::string& why) {
                report.notActivated.push_back({r.id, r.partnerId, benefit, why});
                if (domain::activatesAutomatically(r.benefit) &&
                    domain::activationOverdue(r.renewalDate, today, settings.activation.overdueDays))
                    report.overdue.push_back({r.id, r.partnerId, benefit,
                                              "renewed " + r.renewalDate + ", pending " +
                                                  std::to_string(domain::daysBetween(r.renewalDate, today)) +
                                                  " days: " + why});
            };
            if (!domain::activatesAutomatically(r.benefit) && options.partnerId.empty()) {
                ++report.waitingForRequest;
                continue;
            }
            const domain::Plan* plan = settings.plans.forBenefit(r.benefit);
            if (!plan) {
                problem("no plan in the configuration serves benefit '" + benefit + "'");
                continue;
            }
            auto& view = partners[r.partnerId];
            if (!view) {
                auto p = ref.partner(r.partnerId);
                if (p) view = PartnerView{*p, ref.contactsOf(r.partnerId)};
            }
            if (!view) {
                problem("partner " + r.partnerId + " is unknown");
                continue;
            }
            std::optional<domain::Location> location;
            if (r.benefit == domain::Benefit::CompetencyKit) {
                location = ref.location(r.locationId);
                if (!location) {
                    problem("location " + r.locationId + " is unknown");
                    continue;
                }
            }
            auto recipients =
                domain::idRecipients(view->partner, location ? &*location : nullptr, view->contacts, policy);
            if (!recipients.primary) {
                problem(recipients.problem + "; the IDs would have nobody to go to");
                continue;
            }
            if (options.dryRun) {
                report.dryRunLines.push_back("would activate renewal " + std::to_string(r.id) + " of partner " +
                                             r.partnerId + " (" + benefit + ") as '" + plan->name + "', +" +
                                             std::to_string(plan->incidents) + " incidents, IDs to " +
                                             describeRecipients(recipients));
                ++report.activated;
                continue;
            }

            domain::Contract c;
            c.accessId = ids.accessId();
            c.contractId = ids.contractId();
            c.partnerId = r.partnerId;
            c.locationId = r.locationId;
            c.planKey = plan->key;
            c.scope = plan->scope;
            c.activatedOn = today;
            c.expiresOn = domain::addDays(today, plan->validityDays);
            c.incidentsGranted = plan->incidents;
            c.hoursGranted = plan->hours;
            c.renewalId = r.id;
            c.displayName = domain::displayName(domain::yearOf(today), plan->typeCode, r.partnerId, c.accessId);
            c.id = contracts.insert(c, plan->name, r.benefit);
            contracts.appendLedger(c.id, plan->incidents, "activation: " + plan->name,
                                   "grant:contract:" + std::to_string(c.id));
            // The mail is queued without its bytes: deliver renders it from the contract.
            const store::OutboxRow row = queuedIdMail(settings, c, recipients);
            disclosures.recordIdMail(row, outbox.enqueue(row),
                                     r.locationId.empty() ? store::disclosure_rule::kActivationHqPrimary
                                                          : store::disclosure_rule::kLocationKit,
                                     store::disclosure_rule::kRegionalRule);
            renewals.markActivated(r.id);
            ++report.activated;
            if (log.information())  // not composed for nothing at the default level (notice)
                log.information("activated renewal " + std::to_string(r.id) + " of partner " + r.partnerId + " as " +
                            c.displayName + " (" + plan->name + "), ID mail to " + describeRecipients(recipients));
        }
        if (tx) tx->commit();
        progressAdvance(options.progress, static_cast<std::int64_t>(page.size()));
    }
    return report;
}

}  // namespace sm::jobs
