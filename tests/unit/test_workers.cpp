// Several workers on one database (issue 12): queues claimed row by row, balances
// locked before a debit, a run that loses its lease stopped with its transaction
// rolled back. Tests tagged [pg] run on SQLite and on PostgreSQL; [.pg] only on
// PostgreSQL (ctest's "unit-pg:" entries), where workers really run at once.
//
// The SIGKILL run has the issue's size, 4 `supportmail process` processes on 5,000
// requests; SUPPORTMAIL_TEST_SCALE=F scales it (scripts/test.sh runs 0.1 under the
// sanitizers). The threads runs keep 600 requests and 1,000 mails.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/Pipe.h>
#include <Poco/Process.h>

#include "app/lease_guard.h"
#include "jobs/activate.h"
#include "domain/dates.h"
#include "jobs/deliver.h"
#include "jobs/expire.h"
#include "jobs/process.h"
#include "mail/transport.h"
#include "store/contracts.h"
#include "store/inbound.h"
#include "store/incidents.h"
#include "store/reference_data.h"
#include "store/leases.h"
#include "store/outbox.h"
#include "support/job_fixture.h"

using namespace Poco::Data::Keywords;

namespace {

struct Desk : smtest::JobFixture {
    std::int64_t gold = 0, silver = 0;
    std::string goldAccess, goldContract, silverAccess, silverContract;

    explicit Desk(const std::string& extra = "") : JobFixture(extra) {
        importRenewals("4648141,gold," + smtest::today() + ",\n5102233,silver," + smtest::today() + ",\n");
        sm::jobs::ActivationOptions opts;
        auto report = sm::jobs::activate(*db, settings, templates, random, opts, log);
        REQUIRE(report.activated == 2);
        db->session() << "SELECT id, access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(gold),
            into(goldAccess), into(goldContract), now;
        db->session() << "SELECT id, access_id, contract_id FROM contracts WHERE plan_key = 'silver'", into(silver),
            into(silverAccess), into(silverContract), now;
        REQUIRE(gold > 0);
        REQUIRE(silver > 0);
        db->session() << "DELETE FROM outbox", now;  // the ID mails: not under test here
    }

    /// Leaves `left` incidents on the contract (a ledger row, as earlier cases would).
    void leave(std::int64_t contract, int left) {
        sm::store::Contracts c(*db);
        sm::store::Transaction tx(*db);
        c.appendLedger(contract, left - c.balance(contract), "test: earlier cases", "test:used:" + std::to_string(contract));
        tx.commit();
    }

    /// n request mails in the inbound queue, alternating between the two contracts,
    /// each from its own sender (no rate limit in the way).
    void queueRequests(int n) {
        sm::store::Inbound inbound(*db);
        sm::store::Transaction tx(*db);
        for (int i = 0; i < n; ++i) {
            const bool toGold = i % 2 == 0;
            sm::store::InboundRow row;
            row.source = "maildir:/test";
            row.sourceKey = std::to_string(i);
            row.messageId = "<req." + std::to_string(i) + "@partner.example>";
            row.raw = "From: Requester " + std::to_string(i) + " <req" + std::to_string(i) +
                      "@partner.example>\r\nTo: support@example.test\r\nSubject: help " + std::to_string(i) +
                      "\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: " + row.messageId +
                      "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nAccess ID: " +
                      (toGold ? goldAccess : silverAccess) + "\r\nContract ID: " +
                      (toGold ? goldContract : silverContract) +
                      "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
                      "Category: Cluster\r\nSeverity: B\r\nDescription: case " + std::to_string(i) + "\r\n";
            row.size = static_cast<std::int64_t>(row.raw.size());
            row.sha256 = sm::store::sha256Hex(row.raw);
            inbound.insert(row);
        }
        tx.commit();
    }

    /// The invariants of the ledger after any number of workers: each incident debited
    /// exactly once, every balance the sum of its ledger and never negative.
    void checkLedger() {
        CHECK(count("SELECT COUNT(*) FROM incidents") == count("SELECT COUNT(*) FROM ledger WHERE entry_key LIKE 'debit:inbound:%'"));
        CHECK(count("SELECT COUNT(*) FROM (SELECT inbound_ref FROM incidents GROUP BY inbound_ref HAVING COUNT(*) > 1) AS d") == 0);
        for (auto c : {gold, silver}) {
            const int balance = sm::store::Contracts(*db).balance(c);
            CHECK(balance >= 0);
            const std::string id = std::to_string(c);
            CHECK(balance == count("SELECT incidents_granted FROM contracts WHERE id = " + id) -
                                 count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + id) +
                                 count("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE reason LIKE 'test:%' AND contract_ref = " + id));
        }
    }
};

std::string configPath(const Desk& d) { return d.dir.file("supportmail.properties"); }

}  // namespace

TEST_CASE("workers: 4 process workers at once handle each request exactly once and never overdraw a balance",
          "[.pg][workers]") {
    Desk d("process.batch = 20\n");
    const int n = 600;
    d.leave(d.silver, 3);  // few incidents left: 3 of the n/2 silver requests may pass
    d.queueRequests(n);

    std::vector<sm::jobs::ProcessReport> reports(4);
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < reports.size(); ++w)
        workers.emplace_back([&, w] {
            auto db = sm::store::Database::open(d.settings.databaseUrl);
            sm::mail::TemplateSet templates(d.settings.templatesDir);  // one per thread: not thread-safe
            reports[w] = sm::jobs::process(*db, d.settings, templates, d.log);
        });
    for (auto& t : workers) t.join();

    int processed = 0, accepted = 0, refused = 0, busy = 0;
    for (const auto& r : reports) {
        processed += r.processed;
        accepted += r.accepted;
        refused += r.refused;
        busy += r.processed > 0;
    }
    INFO("workers that handled mail: " << busy);
    CHECK(processed == n);  // each message by exactly one worker
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 0);
    CHECK(d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.silver)) == 3);
    CHECK(sm::store::Contracts(*d.db).balance(d.silver) == 0);
    CHECK(d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.gold)) == 20);
    CHECK(accepted == 23);
    CHECK(refused == n - 23);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply:%'") == n);  // one answer each
    d.checkLedger();
}

TEST_CASE("workers: a request whose balance another worker holds is deferred while the others are handled",
          "[.pg][workers]") {
    Desk d("process.batch = 10\n");
    const int n = 20;
    d.queueRequests(n);  // gold and silver alternate, gold first: 10 each, within both balances
    // Another worker's open page holds the gold balance.
    auto other = sm::store::Database::open(d.settings.databaseUrl);
    auto holder = std::make_unique<sm::store::Transaction>(*other);
    sm::store::Contracts(*other).lockedBalance(d.gold);

    sm::jobs::ProcessReport report;
    std::thread worker([&] {
        auto db = sm::store::Database::open(d.settings.databaseUrl);
        sm::mail::TemplateSet templates(d.settings.templatesDir);
        report = sm::jobs::process(*db, d.settings, templates, d.log);
    });
    // Every silver request is handled and committed while gold's balance is held (a
    // worker that waited at the first gold request would have handled none).
    int silverDone = 0;
    for (int i = 0; i < 600 && silverDone < n / 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        silverDone = d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.silver));
    }
    CHECK(silverDone == n / 2);
    CHECK(d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.gold)) == 0);
    holder.reset();  // the other page ends (rolled back): the deferred gold requests go through
    worker.join();
    CHECK(report.processed == n);
    CHECK(report.accepted == n);
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 0);
    CHECK(d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.gold)) == n / 2);
    d.checkLedger();
}

TEST_CASE("workers: a request's pair, its balance lock and its balance come back together, the lock held",
          "[.pg][workers]") {
    Desk d;
    const int granted = sm::store::Contracts(*d.db).balance(d.gold);
    REQUIRE(granted > 3);
    d.db->session() << "INSERT INTO ledger (contract_ref, delta, reason, entry_key, created_at) "
                       "VALUES (" + std::to_string(d.gold) + ", -3, 'earlier cases', 'test:earlier', 0)",
        now;
    auto other = sm::store::Database::open(d.settings.databaseUrl);
    const auto otherMayLock = [&](std::int64_t id) {
        std::int64_t got = 0;
        other->session() << "SELECT CASE WHEN pg_try_advisory_xact_lock(CAST($1 AS BIGINT)) THEN 1 ELSE 0 END",
            use(id), into(got), now;
        return got == 1;
    };
    {
        sm::store::Transaction tx(*d.db);
        sm::store::Contracts contracts(*d.db);
        auto found = contracts.byPairWithLockedBalance(d.goldAccess, d.goldContract, sm::store::LockWait::Never);
        REQUIRE(found);
        CHECK(found->contract.id == d.gold);
        CHECK(found->balance == granted - 3);
        CHECK(d.db->balanceLocksHeld() == 1);
        {
            sm::store::Transaction otherTx(*other);
            CHECK_FALSE(otherMayLock(d.gold));  // held by this transaction
            CHECK(otherMayLock(d.silver));
        }
        // An unknown pair (a real Access ID with another contract's Contract ID) locks nothing.
        CHECK_FALSE(contracts.byPairWithLockedBalance(d.goldAccess, d.silverContract, sm::store::LockWait::Never));
        CHECK(d.db->balanceLocksHeld() == 1);
    }
    // Held by another transaction: refused at once (Never), nothing read.
    sm::store::Transaction otherTx(*other);
    REQUIRE(otherMayLock(d.silver));
    sm::store::Transaction tx(*d.db);
    sm::store::Contracts contracts(*d.db);
    CHECK_THROWS_AS(contracts.byPairWithLockedBalance(d.silverAccess, d.silverContract, sm::store::LockWait::Never),
                    sm::store::BalanceBusy);
    CHECK(d.db->balanceLocksHeld() == 0);
}

TEST_CASE("workers: a claimed outbox page is skipped by another worker until its claim expires", "[pg][workers]") {
    Desk d;
    sm::store::Outbox outbox(*d.db);
    for (int i = 0; i < 5; ++i) {
        sm::store::OutboxRow row;
        row.messageId = "<claim." + std::to_string(i) + "@example.test>";
        row.kind = "test";
        row.envelopeFrom = "support@example.test";
        row.recipients = {"alice@example.test"};
        row.bytes = "Subject: x\r\n\r\nx\r\n";
        outbox.enqueue(row);
    }
    const std::int64_t t = sm::store::Database::nowSeconds();
    auto a = outbox.claim(t, 3, 0, "a", t + 60);
    CHECK(a.size() == 3);
    auto b = outbox.claim(t, 10, 0, "b", t + 60);
    REQUIRE(b.size() == 2);  // only what a does not hold
    CHECK(b[0].id > a[2].id);
    CHECK(outbox.claim(t, 10, 0, "c", t + 60).empty());
    // a dies: once its claims expire, they are taken over.
    CHECK(outbox.claim(t + 61, 10, 0, "c", t + 120).size() == 5);
    CHECK_FALSE(outbox.stillClaimed(a[0].id, "a"));
    CHECK(outbox.stillClaimed(a[0].id, "c"));
    // Given back (renewClaims to 0): due again for anyone.
    outbox.renewClaims("c", 0);
    CHECK(outbox.claim(t, 10, 0, "d", t + 60).size() == 5);
}

TEST_CASE("workers: 4 deliver workers at once send each mail exactly once", "[.pg][workers]") {
    Desk d("delivery.batch = 25\n");
    const int n = 1000;
    {
        sm::store::Outbox outbox(*d.db);
        sm::store::Transaction tx(*d.db);
        for (int i = 0; i < n; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<mail." + std::to_string(i) + "@example.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {"alice@example.test"};
            row.bytes = "Message-ID: " + row.messageId + "\r\nSubject: x\r\n\r\nx\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }
    std::vector<sm::jobs::DeliveryReport> reports(4);
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < reports.size(); ++w)
        workers.emplace_back([&, w] {
            auto db = sm::store::Database::open(d.settings.databaseUrl);
            auto transport = sm::mail::makeTransport(d.settings.transport);
            reports[w] = sm::jobs::deliver(*db, d.settings.delivery, *transport, d.log);
        });
    for (auto& t : workers) t.join();
    int sent = 0;
    for (const auto& r : reports) sent += r.sent;
    CHECK(sent == n);
    std::map<std::string, int> received;
    for (const auto& file : smtest::listFiles(d.dir.file("spool") + "/new")) {
        const std::string text = smtest::readFile(file);
        const auto at = text.find("Message-ID: ");
        REQUIRE(at != std::string::npos);
        received[text.substr(at + 12, text.find("\r\n", at) - at - 12)]++;
    }
    CHECK(received.size() == static_cast<std::size_t>(n));
    int doubled = 0;
    for (const auto& [id, times] : received) doubled += times > 1;
    CHECK(doubled == 0);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == n);
}

TEST_CASE("workers: a process worker killed with SIGKILL mid-run loses and doubles nothing", "[.pg][workers]") {
    Desk d("process.batch = 10\n");
    const int n = smtest::scaled(5000);
    d.leave(d.silver, 5);
    d.queueRequests(n);
    auto launch = [&] {
        Poco::Process::Args args{"--config", configPath(d), "--quiet", "process"};
        return Poco::Process::launch(SUPPORTMAIL_BINARY, args, nullptr, nullptr, nullptr);
    };
    const auto started = std::chrono::steady_clock::now();
    std::vector<Poco::ProcessHandle> workers;
    for (int i = 0; i < 4; ++i) workers.push_back(launch());
    // Kill one once it is surely in the middle of its work: some mail handled, much left.
    for (int i = 0; i < 3000 && d.count("SELECT COUNT(*) FROM inbound WHERE state <> 'pending'") < n / 10; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const int doneBeforeKill = d.count("SELECT COUNT(*) FROM inbound WHERE state <> 'pending'");
    ::kill(workers[0].id(), SIGKILL);
    CHECK(workers[0].wait() != 0);
    for (std::size_t i = 1; i < workers.size(); ++i) CHECK(workers[i].wait() == 0);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const int leftPending = d.count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'");
    WARN(n << " requests, 4 process workers: " << seconds << " s; one killed after " << doneBeforeKill
           << " were handled; " << leftPending << " pending when the other three ended");
    CHECK(doneBeforeKill < n);
    // At most the killed worker's page went back: process.batch new messages plus up to as
    // many deferred ones (a request whose balance another worker held is deferred).
    CHECK(leftPending <= 2 * 10);
    // What the killed worker held went back to the queue with its transaction: a next run takes it.
    auto last = smtest::runSupportmail({"--config", configPath(d), "--quiet", "process"});
    CHECK(last.exitCode == 0);
    CHECK(last.err.empty());  // no server NOTICE on stderr either
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 0);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply:%'") == n);  // one answer each, none twice
    CHECK(d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.silver)) == 5);
    CHECK(d.count("SELECT COUNT(*) FROM incidents WHERE contract_ref = " + std::to_string(d.gold)) == 20);
    d.checkLedger();
}

// PostgreSQL only: on SQLite a job's transaction holds the one write lock (BEGIN
// IMMEDIATE), so the lease cannot be renewed or taken over while it is open; there the
// interruption is seen at the job's next transaction, savepoint or commit.
TEST_CASE("workers: a run that loses its lease is stopped and its open transaction rolled back", "[.pg][workers][lease]") {
    Desk d;
    auto job = sm::store::Database::open(d.settings.databaseUrl);
    sm::store::Leases leases(*d.db);
    sm::app::LeaseGuard guard(d.settings.databaseUrl, "process", d.log, 3, job.get());
    REQUIRE(guard.acquired());
    sm::store::Transaction tx(*job);  // the job at work
    // It stalls past its expiry (simulated) and another run takes over.
    d.db->session() << "UPDATE leases SET expires_at = expires_at - 100", now;
    REQUIRE(leases.acquire("process", "other:2:x", 60));
    for (int i = 0; i < 40 && !guard.lost(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(guard.lost());
    CHECK(job->interrupted());
    // The step it was in: the guard may have cancelled it (it throws) or it may have run;
    // either way the job must not be able to commit it.
    try {
        job->session() << "UPDATE contracts SET state = 'expired'", now;
    } catch (const Poco::Exception&) {
    }
    CHECK_THROWS_AS(tx.commit(), sm::store::RunInterrupted);
    CHECK_THROWS_AS(sm::store::Transaction(*job), sm::store::RunInterrupted);
    CHECK(d.count("SELECT COUNT(*) FROM contracts WHERE state = 'expired'") == 0);
}

TEST_CASE("workers: 4 activate workers and 2 expire workers at once: each renewal and contract once",
          "[.pg][workers]") {
    smtest::JobFixture f("activation.batch = 10\n");
    std::string rows;
    const int n = 120;
    for (int i = 0; i < n; ++i)  // distinct renewal dates: distinct renewals of two partners
        rows += std::string(i % 2 ? "4648141,gold," : "5102233,silver,") +
                sm::domain::addDays(smtest::today(), -(i / 2)) + ",\n";
    f.importRenewals(rows);
    std::vector<sm::jobs::ActivationReport> reports(4);
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < reports.size(); ++w)
        workers.emplace_back([&, w] {
            auto db = sm::store::Database::open(f.settings.databaseUrl);
            sm::mail::TemplateSet templates(f.settings.templatesDir);
            sm::domain::SystemRandom random;
            reports[w] = sm::jobs::activate(*db, f.settings, templates, random, {}, f.log);
        });
    for (auto& t : workers) t.join();
    int activated = 0;
    for (const auto& r : reports) activated += r.activated;
    CHECK(activated == n);
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == n);
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'") == n);
    CHECK(f.count("SELECT COUNT(*) FROM ledger") == n);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 0);

    // All of them past their date: two expire workers write each remainder off once.
    f.db->session() << "UPDATE contracts SET expires_on = '2020-01-01'", now;
    std::vector<sm::jobs::ExpiryReport> expiries(2);
    workers.clear();
    for (std::size_t w = 0; w < expiries.size(); ++w)
        workers.emplace_back([&, w] {
            auto db = sm::store::Database::open(f.settings.databaseUrl);
            sm::mail::TemplateSet templates(f.settings.templatesDir);
            expiries[w] = sm::jobs::expire(*db, f.settings, templates, f.log);
        });
    for (auto& t : workers) t.join();
    CHECK(expiries[0].expired + expiries[1].expired == n);
    CHECK(f.count("SELECT COUNT(*) FROM ledger WHERE entry_key LIKE 'writeoff:contract:%'") == n);
    CHECK(f.count("SELECT COALESCE(SUM(delta), 0) FROM ledger") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM contracts WHERE state = 'expired'") == n);
}

TEST_CASE("a sender is linked to the contract unless the partner's CRM no longer lists the address", "[pg]") {
    Desk d;
    sm::store::ReferenceData(*d.db).deactivateContact("4648141", "bob@example.test", 1);
    sm::store::Incidents incidents(*d.db);
    {
        sm::store::Transaction tx(*d.db);
        incidents.link("bob@example.test", d.gold, "4648141");       // dropped by its partner's CRM
        incidents.link("alice@example.test", d.gold, "4648141");     // listed and active
        incidents.link("alice@example.test", d.gold, "4648141");     // again: still one link
        incidents.link("stranger@example.test", d.gold, "4648141");  // no contact of it: it quoted both IDs
        incidents.link("bob@example.test", d.silver, "5102233");     // not a contact of that partner
        tx.commit();
    }
    CHECK(incidents.linkedContracts("bob@example.test") == std::vector<std::int64_t>{d.silver});
    CHECK(incidents.linkedContracts("alice@example.test") == std::vector<std::int64_t>{d.gold});
    CHECK(incidents.linkedContracts("stranger@example.test") == std::vector<std::int64_t>{d.gold});
}

TEST_CASE("a Message-ID seen again is a duplicate in the same page and in a later run, and mail without one never is",
          "[pg]") {
    Desk d;
    // On PostgreSQL the duplicate check comes with the page (Inbound::pending): a copy in
    // the same page as the first must still be found, as must one in a later run.
    auto queue = [&](const std::string& key, const std::string& messageId) {
        sm::store::Inbound inbound(*d.db);
        sm::store::Transaction tx(*d.db);
        sm::store::InboundRow row;
        row.source = "maildir:/test";
        row.sourceKey = key;
        row.messageId = messageId;
        row.raw = "From: Alice <alice@example.test>\r\nTo: support@example.test\r\nSubject: help " + key +
                  "\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n" +
                  (messageId.empty() ? std::string() : "Message-ID: " + messageId + "\r\n") +
                  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAccess ID: " + d.goldAccess +
                  "\r\nContract ID: " + d.goldContract +
                  "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
                  "Category: Cluster\r\nSeverity: B\r\nDescription: case " + key + "\r\n";
        row.size = static_cast<std::int64_t>(row.raw.size());
        row.sha256 = sm::store::sha256Hex(row.raw);
        const std::int64_t id = inbound.insert(row);
        tx.commit();
        return id;
    };
    auto state = [&](std::int64_t id) {
        std::string st, reason;
        d.db->session() << "SELECT state, reason FROM inbound WHERE id = " + std::to_string(id), into(st), into(reason),
            now;
        return st + ": " + reason;
    };
    const std::int64_t first = queue("a", "<same@partner.example>");
    const std::int64_t copy = queue("b", "<same@partner.example>");
    const std::int64_t bare1 = queue("c", "");
    const std::int64_t bare2 = queue("d", "");
    const std::int64_t copy2 = queue("e", "<same@partner.example>");
    sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    const std::string dup = "duplicate: Message-ID already processed as inbound #" + std::to_string(first);
    CHECK(state(first).rfind("done: accepted", 0) == 0);
    CHECK(state(copy) == dup);
    CHECK(state(copy2) == dup);
    CHECK(state(bare1).rfind("done: accepted", 0) == 0);
    CHECK(state(bare2).rfind("done: accepted", 0) == 0);

    const std::int64_t later = queue("f", "<same@partner.example>");
    // A dry run keeps every message before it uncommitted: it too finds the copies.
    const std::int64_t dryCopy = queue("g", "<other@partner.example>");
    const std::int64_t dryCopy2 = queue("h", "<other@partner.example>");
    std::map<std::int64_t, std::string> dry;
    for (const auto& o : sm::jobs::processDryRun(*d.db, d.settings, d.templates, Poco::Timestamp()))
        dry[o.inboundId] = o.state;
    CHECK(dry[later] == "duplicate");
    CHECK(dry[dryCopy] == "done");
    CHECK(dry[dryCopy2] == "duplicate");
    CHECK(state(dryCopy2) == "pending: ");  // a dry run changes nothing

    sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    CHECK(state(later) == dup);
    CHECK(state(dryCopy2) == "duplicate: Message-ID already processed as inbound #" + std::to_string(dryCopy));
    CHECK(d.count("SELECT COUNT(*) FROM incidents") == 4);
}
