#include "jobs/activate.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

    // Draws until the ID is free in the store and in the current group.
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
    std::set<std::string> usedAccess_, usedContract_;
};

// Builds the ID mails (render + compose, ~40 % of an activation's CPU) on a
// second thread while this one writes the group's contracts, ledger rows and
// renewal states; the rows come back in order and are inserted before the
// group commits, so the transaction holds exactly what it held before. Only
// the builder thread touches the TemplateSet (not thread-safe) during a run.
// A job carries copies of what the mail needs, so nothing it points to can go
// away under the builder. An exception on the builder (TemplateError, an
// invalid address) is rethrown by take(): the group rolls back as before.
class MailBuilder {
public:
    struct Job {
        domain::Partner partner;
        domain::Contract contract;
        const domain::Plan* plan = nullptr;       // owned by settings
        std::vector<domain::Contact> recipients;  // primary first, then the others
    };

    MailBuilder(const app::Settings& settings, const mail::TemplateSet& templates, const Poco::Timestamp& now)
        : settings_(settings), templates_(templates), now_(now) {}

    ~MailBuilder() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    /// Queues a mail; its row is take(n) for the n-th add() since clear().
    void add(Job job) {
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
        {
            std::lock_guard<std::mutex> lock(mutex_);
            jobs_.push_back(std::move(job));
        }
        wake_.notify_all();
    }

    /// Waits for the n-th mail of the group; rethrows the builder's exception.
    store::OutboxRow take(std::size_t n) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return error_ || rows_.size() > n; });
        if (error_) std::rethrow_exception(error_);
        return std::move(rows_[n]);
    }

    /// Next group: every queued mail has been taken.
    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        rows_.clear();
    }

private:
    void run() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
            if (stop_) return;
            Job job = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            store::OutboxRow row;
            std::exception_ptr error;
            try {
                domain::IdRecipients recipients;
                recipients.primary = &job.recipients.front();
                for (std::size_t i = 1; i < job.recipients.size(); ++i) recipients.others.push_back(&job.recipients[i]);
                row = buildIdMail(settings_, templates_, job.partner, job.contract, *job.plan, recipients, now_);
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            if (error) {
                error_ = error;
                jobs_.clear();
            } else {
                rows_.push_back(std::move(row));
            }
            done_.notify_all();
        }
    }

    const app::Settings& settings_;
    const mail::TemplateSet& templates_;
    const Poco::Timestamp now_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::deque<Job> jobs_;
    std::vector<store::OutboxRow> rows_;
    std::exception_ptr error_;
    bool stop_ = false;
    std::thread thread_;
};

std::string describeRecipients(const domain::IdRecipients& r) {
    std::string s = r.primary->email;
    for (const auto* c : r.others) s += ", " + c->email;
    return s;
}

}  // namespace

ActivationReport activate(store::Database& db, const app::Settings& settings, const mail::TemplateSet& templates,
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
    MailBuilder mails(settings, templates, now);

    if (options.progress) options.progress->begin(renewals.countPending(options.partnerId));
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
        struct Activated {
            std::int64_t renewalId;
            std::string partnerId, displayName, planName, recipients;
            bool locationKit;  ///< a kit's IDs go to the location primary
        };
        std::vector<Activated> activated;  // this group's, in order; their mails are being built

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
            MailBuilder::Job job{view->partner, c, plan, {*recipients.primary}};
            for (const auto* other : recipients.others) job.recipients.push_back(*other);
            mails.add(std::move(job));
            renewals.markActivated(r.id);
            activated.push_back({r.id, r.partnerId, c.displayName, plan->name, describeRecipients(recipients),
                                 !r.locationId.empty()});
        }
        // The group's ID mails, in renewal order, into the same transaction.
        for (std::size_t i = 0; i < activated.size(); ++i) {
            const Activated& a = activated[i];
            const store::OutboxRow row = mails.take(i);
            disclosures.recordIdMail(row, outbox.enqueue(row),
                                     a.locationKit ? store::disclosure_rule::kLocationKit
                                                   : store::disclosure_rule::kActivationHqPrimary,
                                     store::disclosure_rule::kRegionalRule);
            ++report.activated;
            log.information("activated renewal " + std::to_string(a.renewalId) + " of partner " + a.partnerId +
                            " as " + a.displayName + " (" + a.planName + "), ID mail to " + a.recipients);
        }
        mails.clear();
        if (tx) tx->commit();
        progressAdvance(options.progress, static_cast<std::int64_t>(page.size()));
    }
    return report;
}

}  // namespace sm::jobs
