// Case closure and the administrators' views (DOMAIN.md flows 8 and 10), end to end
// through the binary: request mails in a Maildir inbox → fetch → process → cases;
// then case close/show/list and contract show/list, and the requester's mail in the
// spool after deliver. A real SQLite store in a temporary directory.
#include <catch2/catch.hpp>

#include <algorithm>

#include <Poco/Data/Session.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Timestamp.h>

#include "app/config.h"
#include "domain/ids.h"
#include "jobs/close_case.h"
#include "mail/templates.h"
#include "store/contracts.h"
#include "store/database.h"
#include "store/incidents.h"
#include "support/cli_site.h"

using namespace Poco::Data::Keywords;
using smtest::runSupportmail;

namespace {

struct Extracted {
    std::string subject, text, raw;
};

struct Desk : smtest::CliSite {
    std::string goldAccess, goldContract, silverAccess, silverContract;
    std::int64_t goldRef = 0, silverRef = 0;
    std::vector<std::string> seen;  // spool files already looked at

    Desk() : CliSite({"4648141,gold", "5102233,silver"}) {
        db->session() << "SELECT id, access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(goldRef),
            into(goldAccess), into(goldContract), now;
        db->session() << "SELECT id, access_id, contract_id FROM contracts WHERE plan_key = 'silver'", into(silverRef),
            into(silverAccess), into(silverContract), now;
        REQUIRE(goldRef > 0);
        REQUIRE(silverRef > 0);
        run({"deliver"});
        seen = smtest::listFiles(spool + "/new");  // the ID mails: not under test here
    }

    void request(const std::string& from, const std::string& subject, const std::string& access,
                 const std::string& contract, const std::string& description) {
        static int n = 0;
        ++n;
        std::string raw = "From: " + from + "\r\nTo: support@example.test\r\nSubject: " + subject +
                          "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <case-req" + std::to_string(n) +
                          "." + std::to_string(Poco::Timestamp().epochMicroseconds()) +
                          "@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                          "Hello,\r\n\r\nAccess ID: " + access + "\r\nContract ID: " + contract +
                          "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
                          "Category: Cluster\r\nSeverity: B\r\nDescription: " + description + "\r\n";
        putInInbox(raw);
    }

    std::int64_t balance(std::int64_t ref) {
        return scalar("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = " + std::to_string(ref));
    }
    std::vector<std::string> caseNumbers() {
        std::vector<std::string> v;
        db->session() << "SELECT case_number FROM incidents ORDER BY id", into(v), now;
        return v;
    }

    /// Delivers and returns the mails that arrived in the spool since the last look.
    std::vector<Extracted> deliverNew() {
        run({"deliver"});
        std::vector<Extracted> out;
        for (const auto& f : smtest::listFiles(spool + "/new")) {
            if (std::find(seen.begin(), seen.end(), f) != seen.end()) continue;
            seen.push_back(f);
            auto x = smtest::extractEml(f);
            REQUIRE(x.exitCode == 0);
            auto obj = Poco::JSON::Parser().parse(x.out).extract<Poco::JSON::Object::Ptr>();
            out.push_back({obj->getValue<std::string>("subject"), obj->getValue<std::string>("text"),
                           smtest::readFile(f)});
        }
        return out;
    }

    void checkNoClearIds(const std::string& output) {
        for (const auto& id : {goldAccess, goldContract, silverAccess, silverContract}) {
            CAPTURE(id);
            CHECK(output.find(id) == std::string::npos);
        }
    }
};

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::string header(const std::string& raw, const std::string& name) {
    auto p = raw.find("\r\n" + name + ": ");
    if (p == std::string::npos) return "";
    p += name.size() + 4;
    std::string value;
    for (;;) {  // unfolded
        auto e = raw.find("\r\n", p);
        value += raw.substr(p, e - p);
        if (e == std::string::npos || e + 2 >= raw.size() || (raw[e + 2] != ' ' && raw[e + 2] != '\t')) break;
        p = e + 2;
    }
    return value;
}

}  // namespace

TEST_CASE("a case number is made from its incident's id, and the thread holds the request and the answer", "[cases]") {
    Desk d;
    d.request("Alice Schmidt <alice@example.test>", "Cluster fails over", d.goldAccess, d.goldContract, "hourly");
    d.request("Erin <erin@example.test>", "Slow", d.silverAccess, d.silverContract, "slow");
    d.run({"fetch"});
    d.run({"process"});
    std::vector<std::int64_t> ids, createdAt;
    std::vector<std::string> numbers;
    d.db->session() << "SELECT id, case_number, created_at FROM incidents ORDER BY id", into(ids), into(numbers),
        into(createdAt), now;
    REQUIRE(ids.size() == 2);
    CHECK(ids[1] > ids[0]);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::string year = Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(createdAt[i]), "%Y");
        std::string digits = std::to_string(ids[i]);
        digits.insert(0, digits.size() < 6 ? 6 - digits.size() : 0, '0');
        CHECK(numbers[i] == "SR-" + year + "-" + digits);
        // The request's Message-ID and our answer's, in that order, each once.
        std::vector<std::string> direction, messageId;
        std::vector<std::int64_t> inboundRef;
        d.db->session() << d.db->sql("SELECT direction, message_id, COALESCE(inbound_ref, 0) FROM case_messages "
                                     "WHERE incident_ref = ? ORDER BY id"),
            use(ids[i]), into(direction), into(messageId), into(inboundRef), now;
        REQUIRE(direction.size() == 2);
        CHECK(direction[0] == "in");
        CHECK(has(messageId[0], "@partner.example>"));
        CHECK(inboundRef[0] > 0);
        CHECK(direction[1] == "out");
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:accepted' AND message_id = '" + messageId[1] +
                       "'") == 1);
        CHECK(inboundRef[1] == 0);
    }
    // A third, after a run that rolled back an incident (its id drawn, never written):
    // ids and case numbers keep growing, none is given twice.
    d.request("Alice Schmidt <alice@example.test>", "Another", d.goldAccess, d.goldContract, "again");
    d.run({"fetch"});
    {
        sm::store::Transaction tx(*d.db);
        sm::store::Incidents incidents(*d.db);
        sm::store::IncidentRow row;
        row.contractRef = d.goldRef;
        row.inboundRef = d.scalar("SELECT MAX(id) FROM inbound");
        row.requesterEmail = "x@example.test";
        row.product = "p";
        row.severity = "B";
        const auto drawn = incidents.create(row, "2026");
        CHECK(drawn.id > ids[1]);
        CHECK(drawn.caseNumber.rfind("SR-2026-", 0) == 0);
        d.db->flush();  // written (PostgreSQL: the pipelined insert answered), then rolled back
    }
    d.run({"process"});
    CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 3);
    CHECK(d.scalar("SELECT COUNT(DISTINCT case_number) FROM incidents") == 3);
    CHECK(d.scalar("SELECT MAX(id) FROM incidents") > ids[1]);
}

TEST_CASE("closing cases: credit back once, tell the requester, refuse twice", "[cases]") {
    Desk d;
    // The description quotes the IDs: the administrators' views must not show them.
    d.request("Alice Schmidt <alice@example.test>", "Cluster fails over", d.goldAccess, d.goldContract,
              "fails over hourly; our Access ID is " + d.goldAccess + " and Contract ID " + d.goldContract);
    d.request("Alice Schmidt <alice@example.test>", "Slow backups", d.goldAccess, d.goldContract, "backups are slow");
    d.request("Erin <erin@example.test>", "May chu bi treo", d.silverAccess, d.silverContract,
              "máy chủ bị treo");
    d.run({"fetch"});
    d.run({"process"});
    auto cases = d.caseNumbers();
    REQUIRE(cases.size() == 3);
    std::string first = cases[0], second = cases[1], vietnamese = cases[2];
    REQUIRE(d.balance(d.goldRef) == 18);
    REQUIRE(d.balance(d.silverRef) == 9);
    auto confirmations = d.deliverNew();
    REQUIRE(confirmations.size() == 3);
    std::string ourFirstMail;
    d.db->session() << d.db->sql("SELECT message_id FROM case_messages m JOIN incidents i ON i.id = m.incident_ref "
                                 "WHERE i.case_number = ? AND m.direction = 'out'"),
        use(first), into(ourFirstMail), now;
    REQUIRE(!ourFirstMail.empty());

    SECTION("usage mistakes and unknown cases") {
        auto both = d.run({"case", "close", first, "--decrement", "--non-decrement"}, 64);
        CHECK(has(both.err, "exactly one of --decrement and --non-decrement"));
        d.run({"case", "close", first}, 64);
        d.run({"case", "close", "--decrement"}, 64);
        d.run({"case", "reopen", first}, 64);
        d.run({"case", "list", "--state", "pending"}, 64);
        d.run({"case", "show", first, "--decrement"}, 64);
        auto unknown = d.run({"case", "close", "SR-1999-000001", "--decrement"}, 65);
        CHECK(has(unknown.err, "unknown case"));
        d.run({"case", "show", "SR-1999-000001"}, 65);
        auto noContract = d.run({"contract", "show", "C-NOSUCHTHNG"}, 65);
        CHECK(has(noContract.err, "unknown contract"));
        d.run({"contract", "show", "999"}, 65);
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE state = 'closed'") == 0);
        CHECK(d.balance(d.goldRef) == 18);
    }

    SECTION("non-decrement credits back once and tells the requester; decrement leaves the balance") {
        auto closed = d.run({"case", "close", first, "--non-decrement", "--note", "Product defect, fixed in CU5"});
        CHECK(has(closed.out, first));
        CHECK(has(closed.out, "credited back"));
        d.checkNoClearIds(closed.out + closed.err);
        CHECK(d.balance(d.goldRef) == 19);
        CHECK(d.scalar("SELECT COUNT(*) FROM ledger WHERE delta = 1 AND entry_key LIKE 'credit:incident:%' "
                       "AND reason = 'non-decrement closure of " + first + "'") == 1);
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE state = 'closed' AND closure_kind = 'non_decrement' "
                       "AND closure_note = 'Product defect, fixed in CU5' AND closed_at > 0") == 1);

        auto mails = d.deliverNew();
        REQUIRE(mails.size() == 1);
        const auto& m = mails[0];
        CHECK(has(m.subject, "[" + first + "]"));
        CHECK(has(m.text, "credited back"));
        CHECK(has(m.text, "Product defect, fixed in CU5"));
        CHECK(has(m.text, "Incidents left:  19"));
        CHECK(has(m.raw, "Auto-Submitted: auto-generated"));
        CHECK(has(header(m.raw, "To"), "alice@example.test"));
        CHECK(header(m.raw, "In-Reply-To") == ourFirstMail);
        CHECK(has(header(m.raw, "References"), ourFirstMail));
        CHECK(d.scalar("SELECT COUNT(*) FROM case_messages m JOIN incidents i ON i.id = m.incident_ref WHERE "
                       "i.case_number = '" + first + "' AND m.direction = 'out'") == 2);

        // Twice: refused, nothing changes, no second mail.
        auto again = d.run({"case", "close", first, "--non-decrement"}, 65);
        CHECK(has(again.err, "already closed"));
        CHECK(has(again.err, first));
        auto againDec = d.run({"case", "close", first, "--decrement"}, 65);
        CHECK(has(againDec.err, "already closed"));
        CHECK(d.balance(d.goldRef) == 19);
        CHECK(d.deliverNew().empty());

        // Decrement: closed, the incident stays used; the mail says nothing of a credit.
        auto dec = d.run({"case", "close", second, "--decrement"});
        CHECK(!has(dec.out, "credited back"));
        CHECK(d.balance(d.goldRef) == 19);
        auto decMails = d.deliverNew();
        REQUIRE(decMails.size() == 1);
        CHECK(has(decMails[0].subject, "[" + second + "]"));
        CHECK(!has(decMails[0].text, "credited back"));
        CHECK(!has(decMails[0].text, "Note from"));

        // The Vietnamese contact is told in Vietnamese.
        d.run({"case", "close", vietnamese, "--non-decrement"});
        CHECK(d.balance(d.silverRef) == 10);
        auto viMails = d.deliverNew();
        REQUIRE(viMails.size() == 1);
        CHECK(has(viMails[0].subject, "[" + vietnamese + "]"));
        CHECK(has(viMails[0].text, "hoàn lại"));
        CHECK(has(viMails[0].text, "Kính gửi"));

        // The ledger is the balance: the sum equals what contract show reports.
        auto show = d.run({"contract", "show", std::to_string(d.goldRef)});
        CHECK(has(show.out, "Incidents left:     19"));
        CHECK(has(show.out, "Open cases:         0"));
        CHECK(has(show.out, "Closed cases:       2"));
    }

    SECTION("a second credit is impossible even when the state check is bypassed") {
        d.run({"case", "close", first, "--non-decrement"});
        REQUIRE(d.balance(d.goldRef) == 19);
        d.db->session() << d.db->sql("UPDATE incidents SET state = 'open' WHERE case_number = ?"), use(first), now;
        auto settings = sm::app::loadSettings(d.conf);
        sm::mail::TemplateSet templates(settings.templatesDir);
        try {
            sm::jobs::closeCase(*d.db, settings, templates, first, sm::jobs::ClosureKind::NonDecrement, "",
                                Poco::Logger::get("test"));
            FAIL("no exception");
        } catch (const sm::jobs::CaseError& e) {
            CHECK(e.reason() == sm::jobs::CaseError::Reason::AlreadyCredited);
            CHECK(has(e.what(), "already credited"));
        }
        CHECK(d.balance(d.goldRef) == 19);
        // Rolled back whole: still open as we left it, no mail queued.
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE state = 'open' AND case_number = '" + first + "'") == 1);
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'case_closed'") == 1);
    }

    SECTION("a non-decrement closure on an expired contract credits and writes the credit off") {
        d.db->session() << "UPDATE contracts SET expires_on = '2020-01-01' WHERE id = " + std::to_string(d.goldRef),
            now;
        d.run({"expire"});
        REQUIRE(d.balance(d.goldRef) == 0);  // the 18 left were written off
        auto closed = d.run({"case", "close", first, "--non-decrement"});
        CHECK(has(closed.out, "credited back and written off again (the contract has expired)"));
        CHECK(has(closed.out, "incidents left: 0"));
        CHECK(d.balance(d.goldRef) == 0);
        CHECK(d.scalar("SELECT COUNT(*) FROM ledger WHERE delta = 1 AND entry_key LIKE 'credit:incident:%'") == 1);
        CHECK(d.scalar("SELECT COUNT(*) FROM ledger WHERE delta = -1 AND entry_key LIKE 'writeoff:credit:incident:%'") ==
              1);
        CHECK(d.scalar("SELECT MIN(s) FROM (SELECT SUM(delta) OVER (ORDER BY id) AS s FROM ledger WHERE contract_ref = " +
                       std::to_string(d.goldRef) + ") AS running") >= 0);  // never negative along the way
        // The other contract is untouched.
        CHECK(d.balance(d.silverRef) == 9);
    }

    SECTION("case show, case list, contract show and contract list mask the IDs") {
        d.run({"case", "close", first, "--non-decrement", "--note", "credited: defect"});
        const std::string goldMasked = sm::domain::maskAccessId(d.goldAccess);
        const std::string goldContractMasked = sm::domain::maskContractId(d.goldContract);
        const std::string silverContractMasked = sm::domain::maskContractId(d.silverContract);

        auto show = d.run({"case", "show", first});
        CHECK(has(show.out, first));
        CHECK(has(show.out, "closed"));
        CHECK(has(show.out, "non_decrement"));
        CHECK(has(show.out, "credited: defect"));
        CHECK(has(show.out, goldMasked));
        CHECK(has(show.out, goldContractMasked));
        CHECK(has(show.out, "fails over hourly"));
        d.checkNoClearIds(show.out + show.err);

        auto open = d.run({"case", "list", "--state", "open"});
        CHECK(!has(open.out, first));
        CHECK(has(open.out, second));
        CHECK(has(open.out, vietnamese));
        CHECK(has(open.out, "2 cases"));
        d.checkNoClearIds(open.out + open.err);

        auto all = d.run({"case", "list"});
        CHECK(has(all.out, first));
        CHECK(has(all.out, "3 cases"));
        auto ofGold = d.run({"case", "list", "--contract", d.goldContract});
        CHECK(has(ofGold.out, first));
        CHECK(has(ofGold.out, second));
        CHECK(!has(ofGold.out, vietnamese));
        d.checkNoClearIds(all.out + ofGold.out + ofGold.err);
        auto closedOnly = d.run({"case", "list", "--state", "closed", "--contract", std::to_string(d.goldRef)});
        CHECK(has(closedOnly.out, first));
        CHECK(!has(closedOnly.out, second));

        for (const std::string& id : {std::to_string(d.goldRef), d.goldContract}) {
            auto c = d.run({"contract", "show", id});
            CHECK(has(c.out, goldMasked));
            CHECK(has(c.out, goldContractMasked));
            CHECK(has(c.out, "4648141"));
            CHECK(has(c.out, "Partner Gold Support 20Pack"));
            CHECK(has(c.out, "Incidents granted:  20"));
            CHECK(has(c.out, "Incidents left:     19"));
            CHECK(has(c.out, "Open cases:         1"));
            CHECK(has(c.out, "Closed cases:       1"));
            CHECK(has(c.out, first));
            CHECK(has(c.out, second));
            d.checkNoClearIds(c.out + c.err);
        }

        auto list = d.run({"contract", "list"});
        CHECK(has(list.out, goldContractMasked));
        CHECK(has(list.out, silverContractMasked));
        CHECK(has(list.out, goldMasked));
        CHECK(has(list.out, "19/20"));
        CHECK(has(list.out, "2 contracts"));
        d.checkNoClearIds(list.out + list.err);
        auto partner = d.run({"contract", "list", "--partner", "5102233"});
        CHECK(has(partner.out, silverContractMasked));
        CHECK(!has(partner.out, goldContractMasked));
        CHECK(has(partner.out, "1 contract"));
    }
}
