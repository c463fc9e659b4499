// The operator's queue tools through the real binary (issue 14): outbox
// list/show/retry/cancel, inbound list/show/reprocess, contact list/show/unblock,
// process --dry-run; each with its exit codes and JSON documents, on a real SQLite
// store fed by fetch from a Maildir inbox.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <sstream>

#include <Poco/Data/Session.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/cli_site.h"

using namespace Poco::Data::Keywords;
using smtest::runSupportmail;

namespace {

Poco::JSON::Object::Ptr json(const std::string& text) {
    return Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
}

struct Queue : smtest::CliSite {
    std::string goldAccess, goldContract;

    Queue() : CliSite({"4648141,gold"}) {
        db->session() << "SELECT access_id, contract_id FROM contracts", into(goldAccess), into(goldContract), now;
        REQUIRE(!goldAccess.empty());
    }

    void mail(const std::string& from, const std::string& headers, const std::string& body) {
        static int n = 0;
        ++n;
        std::string raw = "From: " + from + "\r\nTo: support@example.test\r\nSubject: queue test " +
                          std::to_string(n) + "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <queue" +
                          std::to_string(n) + "." + std::to_string(Poco::Timestamp().epochMicroseconds()) +
                          "@partner.example>\r\n" + headers +
                          "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body;
        putInInbox(raw);
    }

    void request(const std::string& from) {
        mail(from, "",
             "Access ID: " + goldAccess + "\r\nContract ID: " + goldContract +
                 "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
                 "Category: Cluster\r\nSeverity: B\r\nDescription: the cluster stops\r\n");
    }

    void noClearIds(const std::string& output) {
        CHECK(output.find(goldAccess) == std::string::npos);
        CHECK(output.find(goldContract) == std::string::npos);
    }
};

}  // namespace

TEST_CASE("outbox list and show print the queue as a table or one JSON document, IDs masked", "[cli][queue]") {
    Queue q;
    const auto rows = q.scalar("SELECT COUNT(*) FROM outbox");
    REQUIRE(rows >= 1);
    const auto first = q.scalar("SELECT MIN(id) FROM outbox");

    auto list = q.run({"outbox", "list", "--json"});
    auto doc = json(list.out);
    CHECK(doc->getValue<std::int64_t>("count") == rows);
    auto items = doc->getArray("outbox");
    REQUIRE(items->size() == static_cast<std::size_t>(rows));
    auto item = items->getObject(0);
    for (const char* key : {"id", "state", "kind", "message_id", "subject", "envelope_from", "recipients", "attempts",
                            "created_at", "next_attempt_at", "last_reply"})
        CHECK(item->has(key));
    CHECK(item->getValue<std::string>("kind") == "id_mail");
    CHECK(item->getValue<std::string>("state") == "queued");
    CHECK(!item->getValue<std::string>("subject").empty());

    auto table = q.run({"outbox", "list"});
    CHECK(table.out.find("ID") == 0);
    CHECK(table.out.find("#" + std::to_string(first) + " ") != std::string::npos);
    CHECK(table.out.find(std::to_string(rows) + (rows == 1 ? " mail\n" : " mails\n")) != std::string::npos);
    CHECK(json(q.run({"outbox", "list", "--state", "sent", "--json"}).out)->getValue<int>("count") == 0);
    CHECK(json(q.run({"outbox", "list", "--kind", "no_such_kind", "--json"}).out)->getValue<int>("count") == 0);

    // show: the ID mail carries the IDs in clear in its body; what show prints does not.
    auto show = q.run({"outbox", "show", std::to_string(first)});
    CHECK(show.out.find("Recipients:") != std::string::npos);
    CHECK(show.out.find("Attempts:") != std::string::npos);
    CHECK(show.out.find("Message-ID:") != std::string::npos);
    CHECK(show.out.find("Subject: ") != std::string::npos);
    q.noClearIds(show.out);
    auto showJson = json(q.run({"outbox", "show", std::to_string(first), "--json"}).out);
    CHECK(showJson->getValue<std::int64_t>("id") == first);
    CHECK(showJson->getArray("headers")->size() > 3);
    CHECK(!showJson->getValue<std::string>("text").empty());
    q.noClearIds(q.run({"outbox", "show", std::to_string(first), "--json"}).out);

    CHECK(q.run({"outbox", "show", "999999"}, 65).err.find("no outbox mail #999999") != std::string::npos);
    CHECK(q.run({"outbox", "show", "abc"}, 64).err.find("supportmail outbox: outbox mail 'abc'") == 0);
    CHECK(q.run({"outbox", "list", "--state", "bogus"}, 64).err.find("queued|sent|parked|cancelled") !=
          std::string::npos);
    CHECK(q.run({"outbox", "frobnicate"}, 64).err.find("unknown subcommand 'frobnicate': expected list, show, retry "
                                                       "or cancel") != std::string::npos);
    q.run({"outbox", "list", "--parked"}, 64);  // an option of another subcommand
}

TEST_CASE("outbox retry queues parked mail again and cancel keeps mail from being sent", "[cli][queue]") {
    Queue q;
    auto id = q.scalar("SELECT MIN(id) FROM outbox");
    q.db->session() << "UPDATE outbox SET state = 'parked', attempts = 3, last_reply = '550 5.1.1 no such user', "
                       "next_attempt_at = 0 WHERE id = ?",
        use(id), now;
    auto parked = json(q.run({"outbox", "list", "--state", "parked", "--json"}).out);
    REQUIRE(parked->getValue<int>("count") == 1);
    CHECK(parked->getArray("outbox")->getObject(0)->getValue<std::string>("last_reply") == "550 5.1.1 no such user");

    q.run({"outbox", "retry"}, 64);                        // neither ID nor --parked
    q.run({"outbox", "retry", std::to_string(id), "--parked"}, 64);  // both
    const auto before = sm::store::Database::nowSeconds();
    auto r = q.run({"outbox", "retry", "--parked"});
    CHECK(r.out.find("1 mail queued again") != std::string::npos);
    CHECK(q.text("SELECT state FROM outbox WHERE id = " + std::to_string(id)) == "queued");
    CHECK(q.scalar("SELECT attempts FROM outbox WHERE id = " + std::to_string(id)) == 3);  // kept for the record
    CHECK(q.scalar("SELECT next_attempt_at FROM outbox WHERE id = " + std::to_string(id)) >= before);
    // A queued mail is not parked: retry refuses it.
    CHECK(q.run({"outbox", "retry", std::to_string(id)}, 65).err.find("only parked mail is retried") !=
          std::string::npos);

    // deliver sends it; a sent mail can be neither retried nor cancelled.
    q.run({"deliver"});
    CHECK(q.text("SELECT state FROM outbox WHERE id = " + std::to_string(id)) == "sent");
    q.run({"outbox", "retry", std::to_string(id)}, 65);
    CHECK(q.run({"outbox", "cancel", std::to_string(id)}, 65).err.find("is sent") != std::string::npos);

    // cancel: a queued mail is never sent.
    q.request("alice@example.test");
    q.run({"fetch"});
    q.run({"process"});
    const auto reply = q.scalar("SELECT MAX(id) FROM outbox");
    REQUIRE(q.text("SELECT state FROM outbox WHERE id = " + std::to_string(reply)) == "queued");
    const auto spooled = smtest::listFiles(q.spool + "/new").size();
    CHECK(q.run({"outbox", "cancel", std::to_string(reply)}).out.find("cancelled") != std::string::npos);
    CHECK(q.text("SELECT state FROM outbox WHERE id = " + std::to_string(reply)) == "cancelled");
    q.run({"deliver"});
    CHECK(smtest::listFiles(q.spool + "/new").size() == spooled);
    CHECK(json(q.run({"outbox", "list", "--state", "cancelled", "--json"}).out)->getValue<int>("count") == 1);
    q.run({"outbox", "cancel", std::to_string(reply)}, 65);  // once only
}

TEST_CASE("process --dry-run tells what each pending mail would become and changes nothing", "[cli][queue]") {
    Queue q;
    q.request("alice@example.test");
    q.mail("bob@example.test", "Auto-Submitted: auto-replied\r\n", "I am out of the office.\r\n");
    q.run({"fetch"});
    const auto outboxBefore = q.scalar("SELECT COUNT(*) FROM outbox");
    const auto ledgerBefore = q.scalar("SELECT COUNT(*) FROM ledger");

    auto dry = q.run({"process", "--dry-run", "--json"});
    q.noClearIds(dry.out);
    auto doc = json(dry.out);
    CHECK(doc->getValue<bool>("dry_run"));
    auto msgs = doc->getArray("messages");
    REQUIRE(msgs->size() == 2);
    auto req = msgs->getObject(0), auto_ = msgs->getObject(1);
    CHECK(req->getValue<std::string>("sender") == "alice@example.test");
    CHECK(req->getValue<std::string>("state") == "done");
    CHECK(req->getValue<std::string>("classification") == "request");
    REQUIRE(req->getArray("answers")->size() == 1);
    auto answer = req->getArray("answers")->getObject(0);
    CHECK(answer->getValue<std::string>("kind") == "reply:accepted");
    CHECK(answer->getArray("recipients")->getElement<std::string>(0) == "alice@example.test");
    CHECK(!answer->getValue<std::string>("subject").empty());
    CHECK(auto_->getArray("answers")->size() == 0);
    CHECK(auto_->getValue<std::string>("reason").find("unanswered: auto_reply") != std::string::npos);

    auto text = q.run({"process", "--dry-run"});
    CHECK(text.out.find("would queue reply:accepted to alice@example.test") != std::string::npos);
    CHECK(text.out.find("2 pending mails; nothing was changed") != std::string::npos);

    // Nothing changed: both still pending, no incident, no debit, no reply, no run recorded.
    CHECK(q.scalar("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 2);
    CHECK(q.scalar("SELECT COUNT(*) FROM incidents") == 0);
    CHECK(q.scalar("SELECT COUNT(*) FROM ledger") == ledgerBefore);
    CHECK(q.scalar("SELECT COUNT(*) FROM outbox") == outboxBefore);
    CHECK(q.scalar("SELECT COUNT(*) FROM job_runs WHERE job = 'process'") == 0);
    q.run({"process", "--json"}, 64);  // --json without --dry-run

    // The real run does what the dry run said.
    q.run({"process"});
    CHECK(q.scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(q.scalar("SELECT COUNT(*) FROM outbox") == outboxBefore + 1);
}

TEST_CASE("inbound list, show and reprocess: ignored and quarantined mail is processed again once", "[cli][queue]") {
    Queue q;
    q.request("alice@example.test");
    q.mail("bob@example.test", "Auto-Submitted: auto-replied\r\n", "I am out of the office.\r\n");
    q.request("bob@example.test");
    q.run({"fetch"});
    // The third message as if the parser had failed on it (a bug fixed since).
    auto third = q.scalar("SELECT MAX(id) FROM inbound");
    q.db->session() << "UPDATE inbound SET state = 'quarantined', reason = 'parser failed: test' WHERE id = ?",
        use(third), now;
    q.run({"process"});
    const auto requestId = q.scalar("SELECT MIN(id) FROM inbound");
    const auto autoId = requestId + 1;

    auto all = json(q.run({"inbound", "list", "--json"}).out);
    CHECK(all->getValue<int>("count") == 3);
    auto firstRow = all->getArray("inbound")->getObject(0);
    for (const char* key : {"id", "state", "ignored", "classification", "reason", "sender", "message_id", "source",
                            "size", "fetched_at"})
        CHECK(firstRow->has(key));
    auto ignored = json(q.run({"inbound", "list", "--state", "ignored", "--json"}).out);
    REQUIRE(ignored->getValue<int>("count") == 1);
    CHECK(ignored->getArray("inbound")->getObject(0)->getValue<std::int64_t>("id") == autoId);
    auto quarantined = json(q.run({"inbound", "list", "--state", "quarantined", "--json"}).out);
    REQUIRE(quarantined->getValue<int>("count") == 1);
    CHECK(quarantined->getArray("inbound")->getObject(0)->getValue<std::string>("reason") == "parser failed: test");
    auto table = q.run({"inbound", "list"}).out;
    CHECK(table.find("ignored") != std::string::npos);
    CHECK(table.find("quarantined") != std::string::npos);
    q.run({"inbound", "list", "--state", "nonsense"}, 64);

    auto show = q.run({"inbound", "show", std::to_string(requestId)}).out;
    CHECK(show.find("Classification: request") != std::string::npos);
    CHECK(show.find("Reason:         accepted:") != std::string::npos);
    CHECK(show.find("Subject: queue test") != std::string::npos);
    q.noClearIds(show);
    auto showJson = json(q.run({"inbound", "show", std::to_string(autoId), "--json"}).out);
    CHECK(showJson->getValue<bool>("ignored"));
    CHECK(showJson->getArray("headers")->size() >= 5);
    q.run({"inbound", "show", "424242"}, 65);

    // A request that opened a case is never processed twice.
    CHECK(q.run({"inbound", "reprocess", std::to_string(requestId)}, 65).err.find("only quarantined, rejected or ignored") !=
          std::string::npos);
    CHECK(q.text("SELECT state FROM inbound WHERE id = " + std::to_string(requestId)) == "done");
    // The ignored one and the quarantined one go back to pending and through process once.
    q.run({"inbound", "reprocess", std::to_string(autoId)});
    auto r = q.run({"inbound", "reprocess", "--quarantined"});
    CHECK(r.out.find("1 mail pending again") != std::string::npos);
    CHECK(q.scalar("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 2);
    q.run({"process"});
    CHECK(q.scalar("SELECT COUNT(*) FROM incidents") == 2);  // alice's, then bob's once quarantine lifted
    CHECK(q.scalar("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 0);
    q.run({"inbound", "reprocess", std::to_string(third)}, 65);  // now a case: not again
    q.run({"inbound", "reprocess"}, 64);
}

TEST_CASE("contact list, show and unblock", "[cli][queue]") {
    Queue q;
    const auto contacts = q.scalar("SELECT COUNT(*) FROM contacts");
    auto list = json(q.run({"contact", "list", "--json"}).out);
    CHECK(list->getValue<std::int64_t>("count") == contacts);
    auto c = list->getArray("contacts")->getObject(0);
    for (const char* key : {"id", "email", "name", "partner_id", "location_id", "role", "language", "country",
                            "address_state"})
        CHECK(c->has(key));
    CHECK(json(q.run({"contact", "list", "--partner", "5102233", "--json"}).out)->getValue<int>("count") == 2);
    auto table = q.run({"contact", "list"}).out;
    CHECK(table.find("erin@example.test") != std::string::npos);
    CHECK(table.find("Nguyễn Văn An") != std::string::npos);

    q.db->session() << "UPDATE contacts SET address_state = 'bouncing' WHERE email = 'bob@example.test'", now;
    auto bouncing = json(q.run({"contact", "list", "--state", "bouncing", "--json"}).out);
    REQUIRE(bouncing->getValue<int>("count") == 1);
    CHECK(bouncing->getArray("contacts")->getObject(0)->getValue<std::string>("email") == "bob@example.test");
    auto show = q.run({"contact", "show", "Bob@Example.test"}).out;
    CHECK(show.find("bouncing") != std::string::npos);
    CHECK(show.find("Contoso Cloud Partners") != std::string::npos);
    auto showJson = json(q.run({"contact", "show", "bob@example.test", "--json"}).out);
    CHECK(showJson->getArray("contacts")->getObject(0)->getValue<std::string>("address_state") == "bouncing");

    q.run({"contact", "unblock", "bob@example.test"});
    CHECK(q.text("SELECT address_state FROM contacts WHERE email = 'bob@example.test'") == "ok");
    CHECK(q.run({"contact", "unblock", "bob@example.test"}, 65).err.find("not marked bouncing") != std::string::npos);
    CHECK(q.run({"contact", "show", "nobody@example.test"}, 65).err.find("no contact has the address") !=
          std::string::npos);
    q.run({"contact", "list", "--state", "gone"}, 64);
}

TEST_CASE("case show has subject, due time and thread, case list --overdue finds the late ones", "[cli][case_commands]") {
    Queue q;
    q.request("alice@example.test");
    q.run({"fetch"});
    q.run({"process"});
    const std::string number = q.text("SELECT case_number FROM incidents");
    const std::string requestMid = q.text("SELECT message_id FROM inbound");
    REQUIRE(!number.empty());

    auto show = q.run({"case", "show", number}).out;
    CHECK(show.find("Subject:       queue test") != std::string::npos);
    CHECK(show.find("business hours") != std::string::npos);
    CHECK(show.find("  Due:           ") != std::string::npos);
    CHECK(show.find("OVERDUE") == std::string::npos);
    CHECK(show.find("Thread:        2 messages") != std::string::npos);  // the request and our confirmation
    CHECK(show.find("    in  ") != std::string::npos);
    CHECK(show.find(requestMid) != std::string::npos);
    q.noClearIds(show);
    auto doc = json(q.run({"case", "show", number, "--json"}).out);
    for (const char* key : {"case_number", "state", "closure_kind", "severity", "response_business_hours", "opened_at",
                            "due_at", "overdue", "contract_row", "contract", "requester", "product", "subject",
                            "contract_id", "thread", "description"})
        CHECK(doc->has(key));
    CHECK(doc->getValue<std::string>("case_number") == number);
    CHECK_FALSE(doc->getValue<bool>("overdue"));
    auto thread = doc->getArray("thread");
    REQUIRE(thread->size() == 2);
    CHECK(thread->getObject(0)->getValue<std::string>("direction") == "in");
    CHECK(thread->getObject(0)->getValue<std::string>("message_id") == requestMid);
    CHECK(thread->getObject(1)->getValue<std::string>("direction") == "out");

    CHECK(json(q.run({"case", "list", "--overdue", "--json"}).out)->getValue<int>("count") == 0);
    q.db->session() << "UPDATE incidents SET due_at = ?", bind(sm::store::Database::nowSeconds() - 7200), now;
    auto late = json(q.run({"case", "list", "--overdue", "--json"}).out);
    REQUIRE(late->getValue<int>("count") == 1);
    CHECK(late->getArray("cases")->getObject(0)->getValue<bool>("overdue"));
    CHECK(q.run({"case", "list", "--overdue"}).out.find("1 case overdue") != std::string::npos);
    CHECK(q.run({"case", "show", number}).out.find("(OVERDUE by 2 h") != std::string::npos);
    q.run({"case", "list", "--overdue", "--state", "closed"}, 64);
    q.run({"case", "close", number, "--decrement"});
    CHECK(json(q.run({"case", "list", "--overdue", "--json"}).out)->getValue<int>("count") == 0);
    CHECK(json(q.run({"case", "list", "--state", "closed", "--json"}).out)->getValue<int>("count") == 1);
}

TEST_CASE("contract show finds a contract by display name or masked Access ID, never by the clear one", "[cli][case_commands]") {
    Queue q;
    const std::string display = q.text("SELECT display_name FROM contracts");
    const std::string masked = q.goldAccess.substr(0, 4) + "xxxxxx";
    for (const auto& given : {display, masked, std::string("#1"), std::string("1"), q.goldContract}) {
        CAPTURE(given);
        auto r = q.run({"contract", "show", given});
        CHECK(r.out.find("Contract #1: " + display) == 0);
        q.noClearIds(r.out);
    }
    auto doc = json(q.run({"contract", "show", masked, "--json"}).out);
    for (const char* key : {"id", "display_name", "contract_id", "access_id", "partner_id", "plan", "state",
                            "expires_on", "incidents_granted", "incidents_left", "hours", "open_cases",
                            "closed_cases", "cases"})
        CHECK(doc->has(key));
    CHECK(doc->getValue<std::string>("access_id") == masked);
    // The clear Access ID (or any 10 digits) is refused with a reason, and not echoed back.
    auto clear = q.run({"contract", "show", q.goldAccess}, 65);
    CHECK(clear.err.find("looks like an Access ID") != std::string::npos);
    q.noClearIds(clear.err);
    CHECK(q.run({"contract", "show", "7704916296"}, 65).err.find("give the masked form 7704xxxxxx") !=
          std::string::npos);
    CHECK(q.run({"contract", "show", "no such name"}, 65).err.find("supportmail contract show: unknown contract") ==
          0);
    CHECK(q.run({"contract", "bogus"}, 64).err.find("expected show, list or disclosures") != std::string::npos);
}

TEST_CASE("contract list over 20000 contracts is fast and its columns stay aligned", "[cli][case_commands]") {
    Queue q;
    // 20,000 contracts of the one sample partner, written straight into the store.
    q.db->session() << "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
                       "INSERT INTO renewals (partner_id, benefit, renewal_date, state, imported_at) "
                       "SELECT '4648141', 'gold', '2025-01-01/' || i, 'activated', 0 FROM n",
        now;
    q.db->session() << "INSERT INTO contracts (access_id, contract_id, partner_id, renewal_id, plan_key, plan_name, "
                       "display_name, benefit, scope, activated_on, expires_on, state, incidents_granted, "
                       "hours_granted) SELECT printf('%010d', 3000000000 + id), printf('C-Z%09d', id), partner_id, "
                       "id, 'gold', 'Gold', printf('25 GOLD-4648141-unk (%sxxxxxx)', "
                       "substr(printf('%010d', 3000000000 + id), 1, 4)), 'gold', 'any', '2025-01-01', '2026-01-01', "
                       "'expired', 10, 20 FROM renewals WHERE renewal_date LIKE '2025-01-01/%'",
        now;
    q.db->session() << "INSERT INTO ledger (contract_ref, delta, reason, entry_key, created_at) "
                       "SELECT id, 10, 'grant', 'bench-' || id, 0 FROM contracts WHERE contract_id LIKE 'C-Z%'",
        now;
    REQUIRE(q.scalar("SELECT COUNT(*) FROM contracts") == 20001);
    const auto start = std::chrono::steady_clock::now();
    auto r = q.run({"contract", "list"});
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    CAPTURE(ms);
    // The issue asks for 1 s; measured 0.3 s. The bound leaves room for a loaded CI machine.
    CHECK(ms < 2500);
    CHECK(r.out.find("20001 contracts\n") != std::string::npos);
    // Every row's second column starts where the heading's does, from #1 to #20001.
    std::istringstream lines(r.out);
    std::string line;
    std::getline(lines, line);
    const auto column = line.find("CONTRACT ");
    REQUIRE(column != std::string::npos);
    int rows = 0;
    while (std::getline(lines, line) && line[0] == '#') {
        ++rows;
        CHECK(line[column - 1] == ' ');
        CHECK(line[column] != ' ');
        if (line[column - 1] != ' ' || line[column] == ' ') break;  // one failure says it
    }
    CHECK(rows == 20001);
    auto doc = json(q.run({"contract", "list", "--json"}).out);
    CHECK(doc->getValue<int>("count") == 20001);
    CHECK(doc->getArray("contracts")->getObject(20000)->getValue<int>("incidents_left") == 10);
}

TEST_CASE("an ID mail sent again on request says who asked and when", "[cli][resend]") {
    Queue q;
    q.run({"deliver"});  // the first ID mail out of the way
    const auto before = smtest::listFiles(q.spool + "/new");
    // bob (a member, same country as the primary) asks; the primary gets the IDs again.
    // A resend needs an authenticated sender (process.require_authentication, on by default).
    std::string raw = "Authentication-Results: mx.example.test; dmarc=pass header.from=example.test\r\n"
                      "From: bob@example.test\r\nTo: support@example.test\r\nSubject: resend IDs please\r\n"
                      "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <resend." +
                      std::to_string(Poco::Timestamp().epochMicroseconds()) +
                      "@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                      "Please resend our IDs.\r\n";
    smtest::writeFile(q.inbox + "/new/1700000099.M99P1.q", raw);
    q.run({"fetch"});
    q.run({"process"});
    q.run({"deliver"});
    int resent = 0;
    for (const auto& f : smtest::listFiles(q.spool + "/new")) {
        if (std::find(before.begin(), before.end(), f) != before.end()) continue;
        auto x = smtest::extractEml(f);
        REQUIRE(x.exitCode == 0);
        auto mail = json(x.out);
        const std::string text = mail->getValue<std::string>("text");
        if (text.find(q.goldAccess) == std::string::npos) continue;  // the acknowledgement
        ++resent;
        CHECK(text.find("Sent again on request: bob@example.test asked for these IDs on ") != std::string::npos);
        CHECK(text.find(" UTC.") != std::string::npos);
    }
    CHECK(resent >= 1);
}
