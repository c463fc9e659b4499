// Expiry against a real SQLite store (temporary file) and the real templates:
// contracts past their date expire and their remainder is written off once; the
// reminders before go to the primary contact only, each once, the most urgent when
// several are due; they never carry the IDs. The ledger sum is the balance
// throughout. Dates move with the `now` parameter and UPDATEs of contracts.
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>
#include <Poco/Logger.h>
#include <Poco/Timespan.h>

#include "app/config.h"
#include "domain/dates.h"
#include "domain/requests.h"
#include "jobs/activate.h"
#include "jobs/expire.h"
#include "mail/mime_parser.h"
#include "mail/templates.h"
#include "store/contracts.h"
#include "store/outbox.h"
#include "support/job_fixture.h"

using namespace Poco::Data::Keywords;

namespace {

using smtest::today;

Poco::Timestamp daysFromNow(int days) { return Poco::Timestamp() + Poco::Timespan(days, 0, 0, 0, 0); }

struct Fixture : smtest::JobFixture {
    explicit Fixture(const std::string& extraConfig = "") : JobFixture(extraConfig) {}

    /// Imports and activates renewals (CSV rows); returns the contract ids in order.
    std::vector<std::int64_t> activate(const std::string& rows) {
        importRenewals(rows);
        auto report = sm::jobs::activate(*db, settings, templates, random, {}, log);
        REQUIRE(report.notActivated.empty());
        std::vector<std::int64_t> ids;
        db->session() << "SELECT id FROM contracts ORDER BY id", into(ids), now;
        return ids;
    }

    void setExpiresOn(std::int64_t id, const std::string& date) {
        std::string d = date;
        db->session() << db->sql("UPDATE contracts SET expires_on = ? WHERE id = ?"), use(d), use(id), now;
    }

    sm::jobs::ExpiryReport expire(const Poco::Timestamp& at = Poco::Timestamp(), bool dryRun = false) {
        return sm::jobs::expire(*db, settings, templates, log, at, dryRun);
    }

    int ledgerSum(std::int64_t id) {
        int sum = 0;
        db->session() << db->sql("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = ?"), use(id), into(sum), now;
        return sum;
    }

    std::string state(std::int64_t id) {
        std::string s;
        db->session() << db->sql("SELECT state FROM contracts WHERE id = ?"), use(id), into(s), now;
        return s;
    }

    std::vector<sm::store::OutboxRow> reminders() {
        std::vector<sm::store::OutboxRow> out;
        for (auto& r : sm::store::Outbox(*db).all())
            if (r.kind == "expiry_reminder") out.push_back(r);
        return out;
    }

    /// The balance as the store computes it equals the sum of the ledger rows, never negative.
    void checkLedger(std::int64_t id) {
        sm::store::Contracts contracts(*db);
        CHECK(contracts.balance(id) == ledgerSum(id));
        CHECK(contracts.balance(id) >= 0);
    }
};

}  // namespace

TEST_CASE("expiry: a contract past its date expires, its remainder is written off once", "[expiry]") {
    Fixture f;
    auto ids = f.activate("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    REQUIRE(ids.size() == 2);
    auto gold = ids[0], silver = ids[1];
    sm::store::Contracts contracts(*f.db);
    // One incident used: 20 - 1 = 19 left.
    REQUIRE(contracts.appendLedger(gold, -1, "incident SR-TEST", "debit:test:1"));
    f.checkLedger(gold);
    // expires_on is the first day the contract is no longer valid: today.
    f.setExpiresOn(gold, today());
    f.setExpiresOn(silver, sm::domain::addDays(today(), 1));

    auto first = f.expire();
    CHECK(first.expired == 1);
    CHECK(first.writtenOff == 1);
    CHECK(first.incidentsWrittenOff == 19);
    CHECK(first.problems.empty());
    CHECK(f.state(gold) == "expired");
    CHECK(contracts.balance(gold) == 0);
    f.checkLedger(gold);
    std::string key = "writeoff:contract:" + std::to_string(gold), reason;
    int delta = 0;
    f.db->session() << f.db->sql("SELECT delta, reason FROM ledger WHERE entry_key = ?"), use(key), into(delta), into(reason), now;
    CHECK(delta == -19);
    CHECK(reason == "expired " + today() + ": remainder written off");

    // The silver contract is still valid today (one day left) and keeps its balance.
    CHECK(f.state(silver) == "active");
    CHECK(contracts.balance(silver) == 10);
    f.checkLedger(silver);

    // Requests naming the expired contract are refused with the expiry reason.
    auto expired = contracts.byId(gold);
    REQUIRE(expired);
    CHECK(expired->state == sm::domain::ContractState::Expired);
    auto decision = sm::domain::decideRequest(sm::domain::ContractFacts{*expired, contracts.balance(gold)},
                                              expired->accessId, "SQL Server", "B", f.settings.products, today());
    CHECK(decision.outcome == sm::domain::RequestOutcome::Expired);
    CHECK(decision.reason.find("expired on " + today()) != std::string::npos);

    // A second run the same day changes nothing.
    int ledgerRows = f.count("SELECT COUNT(*) FROM ledger");
    auto second = f.expire();
    CHECK(second.expired == 0);
    CHECK(second.writtenOff == 0);
    CHECK(second.incidentsWrittenOff == 0);
    CHECK(f.count("SELECT COUNT(*) FROM ledger") == ledgerRows);
    // The primary contact was told once that the contract has expired, in plain words.
    CHECK(first.noticesQueued == 1);
    CHECK(second.noticesQueued == 0);
    std::vector<sm::store::OutboxRow> notices;
    for (auto& r : sm::store::Outbox(*f.db).all())
        if (r.kind == "contract_expired") notices.push_back(r);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].recipients == std::vector<std::string>{"alice@example.test"});
    CHECK(notices[0].contractRef == gold);
    CHECK(notices[0].bytes.find("X-Auto-Response-Suppress: All") != std::string::npos);
    CHECK(contracts.balance(gold) == 0);
    f.checkLedger(gold);

    // The next day the silver contract expires too, with its full remainder.
    auto third = f.expire(daysFromNow(1));
    CHECK(third.expired == 1);
    CHECK(third.incidentsWrittenOff == 10);
    CHECK(f.state(silver) == "expired");
    CHECK(contracts.balance(silver) == 0);
    f.checkLedger(silver);
    CHECK(f.count("SELECT COUNT(*) FROM contracts WHERE state = 'active'") == 0);
}

TEST_CASE("expiry: a contract with nothing left expires without a write-off row", "[expiry]") {
    Fixture f;
    auto ids = f.activate("5102233,silver," + today() + ",\n");
    REQUIRE(ids.size() == 1);
    sm::store::Contracts contracts(*f.db);
    REQUIRE(contracts.appendLedger(ids[0], -10, "ten incidents", "debit:test:all"));
    CHECK(contracts.balance(ids[0]) == 0);
    f.setExpiresOn(ids[0], sm::domain::addDays(today(), -3));
    auto report = f.expire();
    CHECK(report.expired == 1);
    CHECK(report.writtenOff == 0);
    CHECK(f.state(ids[0]) == "expired");
    CHECK(f.count("SELECT COUNT(*) FROM ledger WHERE entry_key LIKE 'writeoff:%'") == 0);
    f.checkLedger(ids[0]);
}

TEST_CASE("expiry: a dry run reports and changes nothing", "[expiry]") {
    Fixture f;
    auto ids = f.activate("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    f.setExpiresOn(ids[0], today());
    f.setExpiresOn(ids[1], sm::domain::addDays(today(), 20));
    int outbox = f.count("SELECT COUNT(*) FROM outbox");
    auto report = f.expire(Poco::Timestamp(), true);
    CHECK(report.expired == 1);
    CHECK(report.incidentsWrittenOff == 20);
    CHECK(report.remindersQueued == 1);
    REQUIRE(report.dryRunLines.size() == 2);
    CHECK(report.dryRunLines[0].find("would expire") != std::string::npos);
    CHECK(report.dryRunLines[1].find("erin@example.test") != std::string::npos);
    CHECK(f.state(ids[0]) == "active");
    CHECK(f.ledgerSum(ids[0]) == 20);
    CHECK(f.count("SELECT COUNT(*) FROM outbox") == outbox);
    CHECK(f.count("SELECT COUNT(*) FROM expiry_reminders") == 0);
}

TEST_CASE("expiry: the 30- and 7-day reminders go out exactly once each as the date approaches", "[expiry]") {
    Fixture f;
    auto ids = f.activate("4648141,gold," + today() + ",\n");
    REQUIRE(ids.size() == 1);
    auto gold = ids[0];
    const std::string expiresOn = sm::domain::addDays(today(), 40);
    f.setExpiresOn(gold, expiresOn);

    struct Step {
        int day;        // days from today
        int reminders;  // queued by this run
    };
    // 40 days left: nothing; 30: the 30-day one (twice the same day: once);
    // 25: nothing; 7: the 7-day one; 3 and 1: nothing more.
    const Step steps[] = {{0, 0}, {10, 1}, {10, 0}, {15, 0}, {33, 1}, {33, 0}, {37, 0}, {39, 0}};
    for (const auto& s : steps) {
        CAPTURE(s.day);
        auto r = f.expire(daysFromNow(s.day));
        CHECK(r.remindersQueued == s.reminders);
        CHECK(r.remindersSkipped == 0);
        CHECK(r.expired == 0);
        CHECK(r.problems.empty());
        f.checkLedger(gold);
    }
    auto mails = f.reminders();
    REQUIRE(mails.size() == 2);
    CHECK(f.count("SELECT COUNT(*) FROM expiry_reminders WHERE days_before = 30 AND sent_at > 0") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM expiry_reminders WHERE days_before = 7 AND sent_at > 0") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM expiry_reminders") == 2);

    // To the HQ primary only: no same-country extras (bob), unlike the ID mail.
    for (const auto& m : mails) {
        CHECK(m.recipients == std::vector<std::string>{"alice@example.test"});
        CHECK(m.contractRef == gold);
    }
    auto first = sm::mail::parseMail(mails[0].bytes);
    CHECK(first.text.find("Days left:        30") != std::string::npos);
    CHECK(first.text.find("Incidents left:   20") != std::string::npos);
    CHECK(first.subject.find("expires on " + expiresOn) != std::string::npos);
    auto second = sm::mail::parseMail(mails[1].bytes);
    CHECK(second.text.find("Days left:        7") != std::string::npos);

    // The expiry day: expired and written off; no reminder any more.
    auto last = f.expire(daysFromNow(40));
    CHECK(last.expired == 1);
    CHECK(last.incidentsWrittenOff == 20);
    CHECK(last.remindersQueued == 0);
    CHECK(f.state(gold) == "expired");
    CHECK(f.ledgerSum(gold) == 0);
    f.checkLedger(gold);
    CHECK(f.reminders().size() == 2);
}

TEST_CASE("expiry: when several reminders are due at once only the most urgent is sent", "[expiry]") {
    Fixture f;
    auto ids = f.activate("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    auto gold = ids[0], silver = ids[1];
    f.setExpiresOn(gold, sm::domain::addDays(today(), 5));     // both 30 and 7 due: only 7
    f.setExpiresOn(silver, sm::domain::addDays(today(), 12));  // 30 due

    auto first = f.expire();
    CHECK(first.remindersQueued == 2);
    CHECK(first.remindersSkipped == 1);
    std::int64_t sentAt = -1;
    f.db->session() << f.db->sql("SELECT sent_at FROM expiry_reminders WHERE contract_ref = ? AND days_before = 30"), use(gold),
        into(sentAt), now;
    CHECK(sentAt == 0);  // recorded as skipped, never to be sent
    CHECK(f.count("SELECT COUNT(*) FROM expiry_reminders WHERE days_before = 7 AND sent_at > 0") == 1);

    // Later runs: the gold contract gets nothing more; silver gets its 7-day one.
    for (int day = 1; day <= 4; ++day) {
        auto r = f.expire(daysFromNow(day));
        CHECK(r.remindersQueued == 0);
    }
    auto later = f.expire(daysFromNow(5));  // gold expires; silver has 7 days left
    CHECK(later.expired == 1);
    CHECK(later.remindersQueued == 1);
    CHECK(later.remindersSkipped == 0);

    auto mails = f.reminders();
    REQUIRE(mails.size() == 3);
    int toAlice = 0, toErin = 0;
    for (const auto& m : mails) {
        if (m.contractRef == gold) {
            ++toAlice;
            CHECK(m.recipients == std::vector<std::string>{"alice@example.test"});
        } else {
            ++toErin;
            CHECK(m.recipients == std::vector<std::string>{"erin@example.test"});
        }
    }
    CHECK(toAlice == 1);
    CHECK(toErin == 2);
    f.checkLedger(gold);
    f.checkLedger(silver);
}

TEST_CASE("expiry: a reminder shows the masked display name, never the IDs, in the contact's language",
          "[expiry]") {
    Fixture f;
    auto ids = f.activate("5102233,silver," + today() + ",\n4648141,competency_kit," + today() + ",CON-PAR\n");
    REQUIRE(ids.size() == 2);
    for (auto id : ids) f.setExpiresOn(id, sm::domain::addDays(today(), 6));
    auto report = f.expire();
    CHECK(report.remindersQueued == 2);

    sm::store::Contracts contracts(*f.db);
    for (const auto& m : f.reminders()) {
        auto c = contracts.byId(m.contractRef);
        REQUIRE(c);
        CAPTURE(c->displayName);
        CHECK(m.bytes.find(c->accessId) == std::string::npos);
        CHECK(m.bytes.find(c->contractId) == std::string::npos);
        auto parsed = sm::mail::parseMail(m.bytes);
        for (const std::string* part : {&parsed.subject, &parsed.text, &parsed.html}) {
            CHECK(part->find(c->accessId) == std::string::npos);
            CHECK(part->find(c->contractId) == std::string::npos);
            CHECK(part->find("{{") == std::string::npos);
        }
        CHECK(parsed.text.find(c->displayName) != std::string::npos);
        CHECK(c->displayName.find("xxxxxx)") != std::string::npos);
        if (c->locationId == "CON-PAR") {
            // A kit: its location's primary contact, in English.
            CHECK(m.recipients == std::vector<std::string>{"carol@example.test"});
            CHECK(parsed.text.find("Hello Carol Dupont,") != std::string::npos);
            CHECK(parsed.text.find("Days left:        6") != std::string::npos);
        } else {
            CHECK(m.recipients == std::vector<std::string>{"erin@example.test"});
            CHECK(parsed.text.find("Kính gửi Nguyễn Văn An,") != std::string::npos);
            CHECK(parsed.text.find("Số ngày còn lại:     6") != std::string::npos);
            CHECK(parsed.subject.find("sẽ hết hạn vào ngày") != std::string::npos);
        }
        CHECK(m.bytes.find("Auto-Submitted: auto-generated") != std::string::npos);
    }
}

TEST_CASE("expiry: a contract whose partner has no primary contact is reported, and reminded later",
          "[expiry]") {
    Fixture f;
    auto ids = f.activate("5102233,silver," + today() + ",\n");
    f.setExpiresOn(ids[0], sm::domain::addDays(today(), 20));
    f.db->session() << "UPDATE contacts SET role = 'member' WHERE email = 'erin@example.test'", now;
    auto r = f.expire();
    CHECK(r.remindersQueued == 0);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].find("no hq_primary") != std::string::npos);
    CHECK(f.count("SELECT COUNT(*) FROM expiry_reminders") == 0);

    f.db->session() << "UPDATE contacts SET role = 'hq_primary' WHERE email = 'erin@example.test'", now;
    auto again = f.expire();
    CHECK(again.remindersQueued == 1);
    CHECK(again.problems.empty());
}

TEST_CASE("expiry: expiry.reminder_days is configurable and checked", "[expiry]") {
    SECTION("default 30 and 7") {
        Fixture f;
        CHECK(f.settings.expiryReminderDays == std::vector<int>{30, 7});
    }
    SECTION("a single 14-day reminder") {
        Fixture f("expiry.reminder_days = 14\n");
        CHECK(f.settings.expiryReminderDays == std::vector<int>{14});
        auto ids = f.activate("4648141,gold," + today() + ",\n");
        f.setExpiresOn(ids[0], sm::domain::addDays(today(), 20));
        CHECK(f.expire().remindersQueued == 0);
        CHECK(f.expire(daysFromNow(6)).remindersQueued == 1);
        CHECK(f.expire(daysFromNow(15)).remindersQueued == 0);
    }
    SECTION("sorted, duplicates dropped") {
        Fixture f("expiry.reminder_days = 7, 60,30 ,7\n");
        CHECK(f.settings.expiryReminderDays == std::vector<int>{60, 30, 7});
    }
    SECTION("bad values name the file, the line and the key") {
        for (const std::string bad : {"30, seven", "0", "-7", "30,,7", "", "7.5"}) {
            CAPTURE(bad);
            smtest::TempDir dir;
            std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"),
                                                       "expiry.reminder_days = " + bad + "\n");
            try {
                sm::app::loadSettings(conf);
                FAIL("no ConfigError");
            } catch (const sm::app::ConfigError& e) {
                std::string what = e.what();
                CHECK(what.find(conf + ":") != std::string::npos);
                CHECK(what.find("expiry.reminder_days") != std::string::npos);
                // The line number: the last line of the file.
                int lines = 0;
                for (char ch : smtest::readFile(conf)) lines += ch == '\n';
                CHECK(what.find(":" + std::to_string(lines) + ":") != std::string::npos);
            }
        }
    }
}
