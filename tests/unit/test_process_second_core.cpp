// process on two threads (jobs/process/second_core.h): the helper parses the next
// message and renders the answers while the main thread writes, and a request's
// answer reaches the outbox after the next message. What must not change: the answers
// in the order of the mails, each case's answer queued, the hourly reply limit
// counting answers still rendering, and a rendering that fails ending the run as it
// did when it was rendered inside its message.
#include <catch2/catch.hpp>

#include <regex>
#include <vector>

#include <Poco/Data/Session.h>
#include <Poco/Exception.h>
#include <Poco/File.h>

#include "jobs/activate.h"
#include "jobs/process.h"
#include "mail/templates.h"
#include "store/inbound.h"
#include "support/job_fixture.h"

using namespace Poco::Data::Keywords;

namespace {

struct Desk : smtest::JobFixture {
    std::string access, contract;

    explicit Desk(const std::string& extra) : JobFixture(extra) {
        importRenewals("4648141,gold," + smtest::today() + ",\n");
        sm::jobs::ActivationOptions opts;
        REQUIRE(sm::jobs::activate(*db, settings, templates, random, opts, log).activated == 1);
        db->session() << "SELECT access_id, contract_id FROM contracts", into(access), into(contract), now;
        db->session() << "DELETE FROM outbox", now;  // the ID mail: not under test here
    }

    /// A request from `sender` with the contract's IDs; `vietnamese` writes it in
    /// Vietnamese (so it is answered with the vi templates). Returns its Message-ID.
    std::string queueRequest(int i, const std::string& sender, bool vietnamese = false) {
        sm::store::Inbound inbound(*db);
        sm::store::InboundRow row;
        row.source = "maildir:/test";
        row.sourceKey = std::to_string(i);
        row.messageId = "<req." + std::to_string(i) + "@partner.example>";
        row.raw = "From: " + sender + "\r\nTo: support@example.test\r\nSubject: " +
                  (vietnamese ? std::string("=?utf-8?q?h=E1=BB=97_tr=E1=BB=A3?=") : "help") + " " + std::to_string(i) +
                  "\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: " + row.messageId +
                  "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAccess ID: " + access +
                  "\r\nContract ID: " + contract +
                  "\r\nProduct: Windows Server 2019\r\nSeverity: B\r\nDescription: case " + std::to_string(i) +
                  (vietnamese ? " (m\xE1\xBB\x99t l\xE1\xBB\x97i)" : "") + "\r\n";
        row.size = static_cast<std::int64_t>(row.raw.size());
        row.sha256 = sm::store::sha256Hex(row.raw);
        inbound.insert(row);
        return row.messageId;
    }

    /// Of ten requests, the five before the sixth done, answered and debited once; the
    /// sixth and those after it pending.
    void checkFirstFiveDone() {
        CHECK(count("SELECT COUNT(*) FROM inbound WHERE state = 'done'") == 5);
        CHECK(count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 5);
        CHECK(count("SELECT MIN(id) FROM inbound WHERE state = 'pending'") ==
              count("SELECT MAX(id) FROM inbound WHERE state = 'done'") + 1);
        CHECK(count("SELECT COUNT(*) FROM incidents") == 5);
        CHECK(count("SELECT COUNT(*) FROM ledger WHERE entry_key LIKE 'debit:inbound:%'") == 5);
        CHECK(count("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:accepted'") == 5);
    }

    /// Once the cause of the first run's failure is gone: the next run does the five
    /// left, and no mail has two cases, two debits or two answers.
    void checkRestDoneOnce() {
        auto report = sm::jobs::process(*db, settings, templates, log);
        CHECK(report.accepted == 5);
        CHECK(count("SELECT COUNT(*) FROM incidents") == 10);
        CHECK(count("SELECT COUNT(DISTINCT inbound_ref) FROM incidents") == 10);
        CHECK(count("SELECT COUNT(*) FROM ledger WHERE entry_key LIKE 'debit:inbound:%'") == 10);
        CHECK(count("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:accepted'") == 10);
    }

    /// What `pattern`'s first group matches in each queued reply of a kind LIKE `kinds`,
    /// in outbox order ("(none)" where it does not match).
    std::vector<std::string> inReplies(const std::string& kinds, const std::regex& pattern) {
        std::vector<std::string> bytes;
        std::string like = kinds;
        db->session() << db->sql("SELECT b.bytes FROM outbox o JOIN outbox_bytes b ON b.outbox_id = o.id "
                                 "WHERE o.kind LIKE ? ORDER BY o.id"),
            use(like), into(bytes), now;
        std::vector<std::string> out;
        for (const auto& b : bytes) {
            std::smatch m;
            out.push_back(std::regex_search(b, m, pattern) ? m[1].str() : "(none)");
        }
        return out;
    }

    /// The In-Reply-To of every queued reply, in outbox order.
    std::vector<std::string> answeredInOrder() {
        static const std::regex inReplyTo("\r\nIn-Reply-To: ([^\r]*)\r\n");
        return inReplies("reply:%", inReplyTo);
    }
};

}  // namespace

TEST_CASE("process on two threads: answers queued in the order of the mails over several pages, each case's answer in the outbox",
          "[process][second-core][pg]") {
    Desk d("process.batch = 7\nplans.gold.incidents = 100\nprocess.replies_per_sender_per_hour = 100\n");
    std::vector<std::string> expected;
    for (int i = 0; i < 30; ++i)
        expected.push_back(d.queueRequest(i, "Sender " + std::to_string(i % 4) + " <s" + std::to_string(i % 4) +
                                                 "@partner.example>"));
    auto report = sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    CHECK(report.processed == 30);
    CHECK(report.accepted == 30);
    CHECK(d.answeredInOrder() == expected);
    // Each case names its answer, and that answer is queued.
    CHECK(d.count("SELECT COUNT(*) FROM case_messages WHERE direction = 'out'") == 30);
    CHECK(d.count("SELECT COUNT(*) FROM case_messages c JOIN outbox o ON o.message_id = c.message_id "
                  "WHERE c.direction = 'out'") == 30);
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE state = 'done'") == 30);
}

TEST_CASE("process on two threads: the hourly reply limit counts the answers still rendering", "[process][second-core][pg]") {
    // One page: every answer but the last is still on the helper thread, or just
    // inserted, when the next request from the same sender is checked.
    Desk d("plans.gold.incidents = 100\nprocess.replies_per_sender_per_hour = 3\n");
    for (int i = 0; i < 8; ++i) d.queueRequest(i, "Same Sender <same@partner.example>");
    auto report = sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    CHECK(report.processed == 8);
    CHECK(report.rateLimited == 5);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE recipients = 'same@partner.example'") == 3);
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE classification = 'rate_limited'") == 5);
}

TEST_CASE("process: the hourly reply limit counts the answers of earlier pages and of an earlier run",
          "[process][second-core][pg]") {
    // Pages of two: the answers of a page are in the outbox when the next page reads
    // the sender's count (on PostgreSQL in the round trip that reads the pair).
    Desk d("plans.gold.incidents = 100\nprocess.replies_per_sender_per_hour = 5\nprocess.batch = 2\n");
    for (int i = 0; i < 4; ++i) d.queueRequest(i, "Same Sender <same@partner.example>");
    auto first = sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    CHECK(first.processed == 4);
    CHECK(first.rateLimited == 0);
    for (int i = 4; i < 9; ++i) d.queueRequest(i, "Same Sender <same@partner.example>");
    auto second = sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    CHECK(second.processed == 5);
    CHECK(second.accepted == 5);  // handled, each a case; three of them unanswered
    CHECK(second.rateLimited == 4);
    CHECK(d.count("SELECT COUNT(*) FROM outbox WHERE recipients = 'same@partner.example'") == 5);
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE classification = 'rate_limited'") == 4);
}

TEST_CASE("process on two threads: an answer that fails to render after its message leaves the mails before it "
          "committed with their answers, itself and the rest pending, and the error raised",
          "[process][second-core][pg]") {
    Desk d("plans.gold.incidents = 100\nprocess.replies_per_sender_per_hour = 100\n");
    // The templates, with the Vietnamese confirmation broken (an unclosed section).
    const std::string broken = d.dir.file("templates");
    Poco::File(d.settings.templatesDir).copyTo(broken);
    smtest::writeFile(broken + "/request_accepted/vi.txt.mustache", "{{#case_number}} never closed\n");
    sm::mail::TemplateSet templates(broken);

    for (int i = 0; i < 10; ++i) d.queueRequest(i, "Sender <s" + std::to_string(i) + "@partner.example>", i == 5);
    CHECK_THROWS_AS(sm::jobs::process(*d.db, d.settings, templates, d.log), sm::mail::TemplateError);
    // As when each answer was rendered inside its message: the five before it done,
    // answered and debited once, the one that failed and those after it pending.
    d.checkFirstFiveDone();

    // With the template mended (the fixture's own), the next run answers the rest, none twice.
    d.checkRestDoneOnce();
}

TEST_CASE("process: a message whose writes the database refuses leaves the mails before it committed with their "
          "answers, itself and the rest pending, and the error raised",
          "[process][second-core][pg]") {
    // On PostgreSQL a message's writes go with its RELEASE, unanswered, and their
    // answers come back with the next message's first round trip: by then the next
    // message has begun. The failure must still be that message's alone.
    Desk d("plans.gold.incidents = 100\nprocess.replies_per_sender_per_hour = 100\n");
    if (d.db->dialect() == sm::store::Dialect::PostgreSQL) {
        d.db->session() << "CREATE FUNCTION refuse_case_5() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "IF NEW.description = 'case 5' THEN RAISE EXCEPTION 'case 5 refused by a trigger'; END IF; "
                           "RETURN NEW; END $$",
            now;
        d.db->session() << "CREATE TRIGGER refuse_case_5 BEFORE INSERT ON incidents FOR EACH ROW "
                           "EXECUTE FUNCTION refuse_case_5()",
            now;
    } else {
        d.db->session() << "CREATE TRIGGER refuse_case_5 BEFORE INSERT ON incidents WHEN NEW.description = 'case 5' "
                           "BEGIN SELECT RAISE(ABORT, 'case 5 refused by a trigger'); END",
            now;
    }
    for (int i = 0; i < 10; ++i) d.queueRequest(i, "Sender <s" + std::to_string(i) + "@partner.example>");
    std::string error = "(nothing raised)";
    try {
        sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    } catch (const Poco::Exception& e) {
        error = e.displayText();
    } catch (const std::exception& e) {
        error = e.what();
    }
    CHECK_THAT(error, Catch::Contains("case 5 refused by a trigger"));
    d.checkFirstFiveDone();
    CHECK(d.count("SELECT COUNT(*) FROM case_messages") == 10);  // in and out, for each of the five

    // Once the database takes it, the next run does the rest, none twice.
    d.db->session() << "DROP TRIGGER refuse_case_5" +
                           std::string(d.db->dialect() == sm::store::Dialect::PostgreSQL ? " ON incidents" : ""),
        now;
    d.checkRestDoneOnce();
}

TEST_CASE("process: requests in a row on one contract with few incidents left each see the debits of those before "
          "them",
          "[process][second-core][pg]") {
    // On PostgreSQL the reads of a request (its pair's contract, lock and balance, its
    // sender's contacts and replies) are sent while the request before it is handled,
    // before that one's debit: the balance must still count it. Two senders in turn,
    // both quoting the contract's IDs, in one page.
    Desk d("plans.gold.incidents = 3\nprocess.replies_per_sender_per_hour = 100\n");
    for (int i = 0; i < 6; ++i)
        d.queueRequest(i, i % 2 ? "Second <second@partner.example>" : "First <first@partner.example>");
    auto report = sm::jobs::process(*d.db, d.settings, d.templates, d.log);
    CHECK(report.processed == 6);
    CHECK(report.accepted == 3);
    CHECK(report.refused == 3);
    CHECK(d.count("SELECT COUNT(*) FROM incidents") == 3);
    CHECK(d.count("SELECT SUM(delta) FROM ledger") == 0);
    CHECK(d.count("SELECT COUNT(*) FROM inbound WHERE reason = 'refused: no_incidents_left'") == 3);
    // The first three accepted, each answer telling what is left after it.
    CHECK(d.count("SELECT MAX(i.id) FROM inbound i JOIN incidents c ON c.inbound_ref = i.id") <
          d.count("SELECT MIN(id) FROM inbound WHERE reason = 'refused: no_incidents_left'"));
    static const std::regex incidentsLeft("Incidents left: +([0-9-]+) \\(one incident");
    CHECK(d.inReplies("reply:accepted", incidentsLeft) == std::vector<std::string>{"2", "1", "0"});
}
