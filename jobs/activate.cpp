#include "jobs/activate.h"

#include <algorithm>
#include <stdexcept>

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

// A draw that keeps failing is a broken random source, not bad luck: with a million
// contracts among 10^10 Access IDs a draw is taken once in 10,000.
constexpr int kMaxDraws = 1000;

// Draws the contract's Access and Contract IDs and inserts it. The unique indexes
// decide whether the drawn IDs are free (the store's rows and the open group's
// alike); only after a refusal is the store asked which one to draw again.
std::int64_t insertWithNewIds(store::Contracts& contracts, domain::RandomSource& random, domain::Contract& c,
                              const domain::Plan& plan, domain::Benefit benefit, int year) {
    c.accessId = domain::generateAccessId(random);
    c.contractId = domain::generateContractId(random);
    for (int draw = 1;; ++draw) {
        c.displayName = domain::displayName(year, plan.typeCode, c.partnerId, c.accessId);
        if (auto id = contracts.tryInsert(c, plan.name, benefit)) return *id;
        const bool accessTaken = contracts.accessIdExists(c.accessId);
        const bool contractTaken = contracts.contractIdExists(c.contractId);
        if (!accessTaken && !contractTaken)
            throw std::runtime_error("renewal " + std::to_string(c.renewalId) + " already has a contract");
        if (draw == kMaxDraws)
            throw std::runtime_error("no free Access and Contract ID after " + std::to_string(kMaxDraws) +
                                     " draws: the random source repeats itself");
        if (accessTaken) c.accessId = domain::generateAccessId(random);
        if (contractTaken) c.contractId = domain::generateContractId(random);
    }
}

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
    const std::string today = domain::isoDate(now);
    const int year = domain::yearOf(today);
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
        // Every partner of the group with its contacts, read at once.
        std::vector<std::string> partnerIds;
        partnerIds.reserve(page.size());
        for (const auto& r : page) partnerIds.push_back(r.partnerId);
        std::sort(partnerIds.begin(), partnerIds.end());
        partnerIds.erase(std::unique(partnerIds.begin(), partnerIds.end()), partnerIds.end());
        const auto partners = ref.partnersWithContacts(partnerIds);
        std::vector<std::int64_t> activatedRenewals;
        activatedRenewals.reserve(page.size());
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
            const auto found = partners.find(r.partnerId);
            if (found == partners.end()) {
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
            const store::PartnerContacts& view = found->second;
            auto recipients =
                domain::idRecipients(view.partner, location ? &*location : nullptr, view.contacts, policy);
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
            c.partnerId = r.partnerId;
            c.locationId = r.locationId;
            c.planKey = plan->key;
            c.scope = plan->scope;
            c.activatedOn = today;
            c.expiresOn = domain::addDays(today, plan->validityDays);
            c.incidentsGranted = plan->incidents;
            c.hoursGranted = plan->hours;
            c.renewalId = r.id;
            c.id = insertWithNewIds(contracts, random, c, *plan, r.benefit, year);
            contracts.appendLedger(c.id, plan->incidents, "activation: " + plan->name,
                                   "grant:contract:" + std::to_string(c.id));
            // The mail is queued without its bytes: deliver renders it from the contract.
            const store::OutboxRow row = queuedIdMail(settings, c, recipients);
            disclosures.recordIdMail(row, outbox.enqueue(row),
                                     r.locationId.empty() ? store::disclosure_rule::kActivationHqPrimary
                                                          : store::disclosure_rule::kLocationKit,
                                     store::disclosure_rule::kRegionalRule);
            activatedRenewals.push_back(r.id);
            ++report.activated;
            if (log.information())  // not composed for nothing at the default level (notice)
                log.information("activated renewal " + std::to_string(r.id) + " of partner " + r.partnerId + " as " +
                            c.displayName + " (" + plan->name + "), ID mail to " + describeRecipients(recipients));
        }
        if (!options.dryRun) renewals.markActivated(activatedRenewals);
        if (tx) tx->commit();
        progressAdvance(options.progress, static_cast<std::int64_t>(page.size()));
    }
    return report;
}

}  // namespace sm::jobs
