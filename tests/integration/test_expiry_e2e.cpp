// Import → activate → expiry reminder → deliver through the real Postfix, read back
// from the real Dovecot over IMAP: the primary contact gets exactly one reminder
// over two runs of expire and deliver, without the IDs; then the expiry day comes,
// the contract expires and its remainder is written off.
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>

#include "domain/dates.h"
#include "mail/mime_parser.h"
#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;
using smtest::runSupportmail;

namespace {

using smtest::today;

}  // namespace

TEST_CASE("expiry: one reminder reaches the primary over two runs, then the contract expires",
          "[integration][expiry]") {
    REQUIRE(smtest::fileExists(smtest::sharedDir() + "/tools/validate_eml.py"));
    smtest::MailServers s;
    s.reset({"alice", "bob", "carol", "dave"});
    smtest::TempDir dir;
    std::string conf = s.smtpConfig(dir);
    REQUIRE(runSupportmail({"--config", conf, "import-partners", smtest::writeSamplePartners(dir)}).exitCode == 0);
    std::string renewals = dir.file("renewals.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date,location_id\n4648141,gold," + today() + ",\n");
    REQUIRE(runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
    auto act = runSupportmail({"--config", conf, "activate"});
    INFO(act.err);
    REQUIRE(act.exitCode == 0);

    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    std::int64_t id = 0;
    std::string accessId, contractId;
    db->session() << "SELECT id, access_id, contract_id FROM contracts WHERE partner_id = '4648141'", into(id),
        into(accessId), into(contractId), now;
    REQUIRE(id > 0);

    // The ID mail goes first (alice and bob); empty the mailboxes after it, so
    // only what expiry sends is counted.
    auto first = runSupportmail({"--config", conf, "deliver"}, s.auth());
    INFO(first.err);
    REQUIRE(first.exitCode == 0);
    CHECK(first.out.find("1 sent") != std::string::npos);
    REQUIRE(smtest::waitForMessages(s.env, "alice", "alice-pw", 1, 10000).size() >= 1);
    smtest::waitForMessages(s.env, "bob", "bob-pw", 1, 10000);
    s.reset({"alice", "bob", "carol", "dave"});

    // Six days before expiry: the 7-day reminder is due, the 30-day one is skipped.
    std::string expiresOn = sm::domain::addDays(today(), 6);
    db->session() << "UPDATE contracts SET expires_on = ? WHERE id = ?", use(expiresOn), use(id), now;
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        auto exp = runSupportmail({"--config", conf, "expire"});
        INFO(exp.out << exp.err);
        CHECK(exp.exitCode == 0);
        CHECK(exp.out.find("expire: 0 expired, 0 written off (0 incidents), 0 expiry notices queued, " +
                           std::string(round == 0 ? "1" : "0") + " reminders queued") != std::string::npos);
        auto del = runSupportmail({"--config", conf, "deliver"}, s.auth());
        INFO(del.err);
        CHECK(del.exitCode == 0);
        CHECK(del.out.find(round == 0 ? "1 sent" : "0 sent") != std::string::npos);
    }

    auto alice = smtest::waitForMessages(s.env, "alice", "alice-pw", 1, 10000);
    // Give the server a moment to deliver anything else that was accepted.
    alice = smtest::waitForMessages(s.env, "alice", "alice-pw", 2, 1500);
    REQUIRE(alice.size() == 1);
    const std::string& mail = alice[0];
    std::string file = dir.file("reminder.eml");
    smtest::writeFile(file, mail);
    auto check = smtest::checkEml(file);
    INFO(check.out << check.err);
    CHECK(check.exitCode == 0);

    auto parsed = sm::mail::parseMail(mail);
    CHECK(parsed.subject.find("expires on " + expiresOn) != std::string::npos);
    CHECK(parsed.text.find("Hello Alice Schmidt,") != std::string::npos);
    CHECK(parsed.text.find("Days left:        6") != std::string::npos);
    CHECK(parsed.text.find("Incidents left:   20") != std::string::npos);
    for (const std::string* part : {&parsed.subject, &parsed.text, &parsed.html}) {
        CHECK(part->find(accessId) == std::string::npos);
        CHECK(part->find(contractId) == std::string::npos);
    }
    CHECK(mail.find(accessId) == std::string::npos);
    // Only the primary: the same-country member who got the IDs gets no reminder.
    CHECK(smtest::fetchAll(s.env, "bob", "bob-pw").empty());
    CHECK(smtest::fetchAll(s.env, "carol", "carol-pw").empty());

    int sent = -1, skipped = -1;
    db->session() << "SELECT COUNT(*) FROM expiry_reminders WHERE contract_ref = ? AND days_before = 7 AND sent_at > 0",
        use(id), into(sent), now;
    db->session() << "SELECT COUNT(*) FROM expiry_reminders WHERE contract_ref = ? AND days_before = 30 AND sent_at = 0",
        use(id), into(skipped), now;
    CHECK(sent == 1);
    CHECK(skipped == 1);

    // The expiry day: expired, the 20 incidents written off, balance = ledger sum = 0.
    std::string expiryDay = today();
    db->session() << "UPDATE contracts SET expires_on = ? WHERE id = ?", use(expiryDay), use(id), now;
    auto exp = runSupportmail({"--config", conf, "expire"});
    INFO(exp.out << exp.err);
    CHECK(exp.exitCode == 0);
    CHECK(exp.out.find("expire: 1 expired, 1 written off (20 incidents), 1 expiry notices queued, 0 reminders queued") != std::string::npos);
    std::string state;
    int ledgerSum = -1, writeOff = 0;
    db->session() << "SELECT state FROM contracts WHERE id = ?", use(id), into(state), now;
    db->session() << "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = ?", use(id), into(ledgerSum), now;
    std::string key = "writeoff:contract:" + std::to_string(id);
    db->session() << "SELECT delta FROM ledger WHERE entry_key = ?", use(key), into(writeOff), now;
    CHECK(state == "expired");
    CHECK(writeOff == -20);
    CHECK(ledgerSum == 0);

    // A rerun changes nothing.
    auto again = runSupportmail({"--config", conf, "expire"});
    CHECK(again.out.find("expire: 0 expired, 0 written off (0 incidents), 0 expiry notices queued, 0 reminders queued") != std::string::npos);
    int ledgerRows = 0;
    db->session() << "SELECT COUNT(*) FROM ledger WHERE contract_ref = ?", use(id), into(ledgerRows), now;
    CHECK(ledgerRows == 2);

    // A job run was recorded for each expire run.
    int runs = 0;
    db->session() << "SELECT COUNT(*) FROM job_runs WHERE job = 'expire'", into(runs), now;
    CHECK(runs == 4);
}
