// Request mails sent by a real client (swaks) into the support mailbox of the real
// Postfix + Dovecot, then fetch → process → deliver, and the answers read back over
// IMAP from the requester's mailbox. Covers DOMAIN.md flows 5-7 and the hygiene
// rules, a re-fetch, and crashes (SIGKILL) at the two dangerous points.
#include <catch2/catch.hpp>

#include <map>
#include <regex>

#include <Poco/Data/Session.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;
using smtest::runSupportmail;

namespace {

const std::vector<std::string> kUsers = {"support", "alice", "bob", "erin", "frank", "grace", "ops", "mallory"};

using Parsed = smtest::ReceivedMail;

class Desk : public smtest::MailServers {
public:
    smtest::TempDir dir;
    std::string conf;
    std::unique_ptr<sm::store::Database> db;
    std::string goldAccess, goldContract, scsAccess, scsContract, silverAccess, silverContract;

    explicit Desk(const std::string& extraConfig = "") {
        reset(kUsers);
        conf = smtpConfig(dir, supportInbound() + "mail.admin = ops@example.test\nprocess.authserv_id = mx.example.test\n" +
                                   extraConfig);
        run({"import-partners", smtest::writeSamplePartners(dir)});
        std::string renewals = dir.file("renewals.csv");
        std::string today = smtest::today();
        smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + today + "\n4648141,scs," + today +
                                        "\n5102233,silver," + today + "\n");
        run({"import-renewals", renewals});
        run({"activate"});
        db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
        // A leading zero, as DOMAIN.md's example: the ID must survive as a string.
        db->session() << "UPDATE contracts SET access_id = '0' || substr(access_id, 2) WHERE plan_key = 'gold'", now;
        db->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(goldAccess),
            into(goldContract), now;
        db->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'scs'", into(scsAccess),
            into(scsContract), now;
        db->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'silver'", into(silverAccess),
            into(silverContract), now;
        db->session() << "UPDATE outbox SET state = 'sent' WHERE kind = 'id_mail'", now;  // not under test here
    }

    smtest::RunResult run(const std::vector<std::string>& args, const std::vector<std::string>& extraEnv = {}) {
        std::vector<std::string> a = {"--config", conf};
        a.insert(a.end(), args.begin(), args.end());
        std::vector<std::string> envv = authSmtpAndImap();
        envv.insert(envv.end(), extraEnv.begin(), extraEnv.end());
        auto r = runSupportmail(a, envv);
        if (extraEnv.empty()) {
            INFO(args[0] << ": " << r.out << r.err);
            REQUIRE(r.exitCode == 0);
        }
        return r;
    }

    // Sent by swaks, an independent client, as the partner's mail program would.
    void send(const std::string& from, const std::string& raw, std::size_t expectInSupport) {
        sendAndWait(dir, from, raw, expectInSupport);
    }

    void cycle() {
        run({"fetch"});
        run({"process"});
        run({"deliver"});
    }

    Parsed lastMail(const std::string& user, std::size_t count) { return lastReceived(dir, user, count); }

    int scalar(const std::string& sql) {
        int n = 0;
        db->session() << sql, into(n), now;
        return n;
    }
    int balance(const std::string& plan) {
        return scalar("SELECT COALESCE(SUM(l.delta), 0) FROM ledger l JOIN contracts c ON c.id = l.contract_ref "
                      "WHERE c.plan_key = '" + plan + "'");
    }
};

// What our MX (authserv-id mx.example.test, Desk's process.authserv_id) writes on top of a
// mail whose From domain passed DMARC. The test Postfix writes none, so a mail from the
// partner's real mail program carries it as the MX would have added it; a forged mail
// (vouched = false) does not.
const std::string kVouchedByOurMx = "Authentication-Results: mx.example.test; dmarc=pass header.from=example.test\r\n";

std::string requestMail(const std::string& from, const std::string& subject, const std::string& body,
                        const std::string& extraHeaders = "", bool vouched = true) {
    static int n = 0;
    return (vouched ? kVouchedByOurMx : std::string()) + "From: " + from + "\r\nTo: support@example.test\r\nSubject: " + subject +
           "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <req" + std::to_string(++n) + "." +
           std::to_string(Poco::Timestamp().epochMicroseconds()) + "@partner.example>\r\n" + extraHeaders +
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body;
}

std::string fields(const std::string& access, const std::string& contract, const std::string& product,
                   const std::string& severity) {
    return "Hello,\r\n\r\nAccess ID: " + access + "\r\nContract ID: " + contract + "\r\nProduct: " + product +
           "\r\nUsage type: IT Pro\r\nProblem type: Performance\r\nCategory: Cluster\r\nSeverity: " + severity +
           "\r\nDescription: the cluster fails over every hour.\r\nLogs are attached.\r\n";
}

}  // namespace

TEST_CASE("requests by mail over real SMTP and IMAP", "[integration][requests]") {
    Desk d;

    SECTION("valid IDs with a leading zero: a case, one incident debited, the confirmation with case, severity and due time") {
        REQUIRE(d.goldAccess[0] == '0');
        d.send("alice@example.test",
               requestMail("Alice Schmidt <alice@example.test>", "Cluster fails over",
                           fields(d.goldAccess, d.goldContract, "Windows Server 2019", "A")),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
        CHECK(d.balance("gold") == 19);
        std::string caseNumber;
        std::int64_t createdAt = 0;
        d.db->session() << "SELECT case_number, created_at FROM incidents", into(caseNumber), into(createdAt), now;
        REQUIRE(std::regex_match(caseNumber, std::regex("SR-[0-9]{4}-[0-9]{6}")));
        auto reply = d.lastMail("alice", 1);
        CHECK(reply.subject.find("[" + caseNumber + "]") != std::string::npos);
        CHECK(reply.text.find(caseNumber) != std::string::npos);
        CHECK(reply.text.find("A") != std::string::npos);
        // Severity A: two hours around the clock, shown in the calendar's offset (+00:00).
        Poco::Timestamp due = Poco::Timestamp::fromEpochTime(createdAt) + Poco::Timespan(0, 2, 0, 0, 0);
        std::string dueText = Poco::DateTimeFormatter::format(due, "%Y-%m-%d %H:%M");
        CHECK(reply.text.find(dueText) != std::string::npos);
        CHECK(reply.raw.find("Auto-Submitted: auto-replied") != std::string::npos);
        CHECK(reply.raw.find("In-Reply-To: <req") != std::string::npos);
        CHECK(reply.text.find(d.goldContract) == std::string::npos);  // the IDs are not echoed

        SECTION("a follow-up joins the case and debits nothing") {
            std::regex mid("Message-ID: (<[^>]+>)", std::regex::icase);
            std::smatch m;
            REQUIRE(std::regex_search(reply.raw, m, mid));
            d.send("alice@example.test",
                   requestMail("Alice Schmidt <alice@example.test>", "Re: [" + caseNumber + "] Cluster fails over",
                               "Here are more logs.\r\n", "In-Reply-To: " + m.str(1) + "\r\nReferences: " + m.str(1) + "\r\n"),
                   2);
            d.cycle();
            CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
            CHECK(d.balance("gold") == 19);
            CHECK(d.scalar("SELECT COUNT(*) FROM case_messages WHERE direction = 'in'") == 2);
            auto ack = d.lastMail("alice", 2);
            CHECK(ack.subject.find(caseNumber) != std::string::npos);
        }
        SECTION("later requests from the linked address may omit the IDs") {
            d.send("alice@example.test",
                   requestMail("Alice Schmidt <alice@example.test>", "Second problem",
                               "Product: SQL Server\r\nSeverity: C\r\nDescription: slow queries\r\n"),
                   2);
            d.cycle();
            CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 2);
            CHECK(d.balance("gold") == 18);
        }
        SECTION("a re-fetch of the same mailbox doubles nothing") {
            d.db->session() << "DELETE FROM mailbox_sync", now;
            d.cycle();
            CHECK(d.scalar("SELECT COUNT(*) FROM inbound") == 1);
            CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
            CHECK(d.balance("gold") == 19);
            CHECK(smtest::fetchAll(d.env, "alice", "alice-pw").size() == 1);
        }
    }
    SECTION("the same Access ID without its leading zero is refused with the hint") {
        d.send("alice@example.test",
               requestMail("alice@example.test", "Help", fields(d.goldAccess.substr(1), d.goldContract, "Windows Server", "B")),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        CHECK(d.balance("gold") == 20);
        auto reply = d.lastMail("alice", 1);
        CHECK(reply.text.find("leading zeros") != std::string::npos);
        CHECK(reply.text.find("9") != std::string::npos);
    }
    SECTION("an expired contract is refused with the expiry") {
        d.db->session() << "UPDATE contracts SET expires_on = '2025-01-31' WHERE plan_key = 'gold'", now;
        d.send("alice@example.test",
               requestMail("alice@example.test", "Help", fields(d.goldAccess, d.goldContract, "Windows Server", "B")), 1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        auto reply = d.lastMail("alice", 1);
        CHECK(reply.text.find("2025-01-31") != std::string::npos);
        CHECK(reply.text.find("expired") != std::string::npos);
    }
    SECTION("an exhausted contract is refused") {
        d.db->session() << "INSERT INTO ledger (contract_ref, delta, reason, entry_key, created_at) "
                           "SELECT id, -20, 'test: used up', 'test-used-up', 0 FROM contracts WHERE plan_key = 'gold'",
            now;
        d.send("alice@example.test",
               requestMail("alice@example.test", "Help", fields(d.goldAccess, d.goldContract, "Windows Server", "B")), 1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        CHECK(d.balance("gold") == 0);
        auto reply = d.lastMail("alice", 1);
        CHECK(reply.text.find("no incidents left") != std::string::npos);
    }
    SECTION("an SCS pair with an on-premises product is refused: cloud only") {
        d.send("alice@example.test",
               requestMail("alice@example.test", "Help", fields(d.scsAccess, d.scsContract, "SQL Server 2019", "B")), 1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        CHECK(d.balance("scs") == 20);
        auto reply = d.lastMail("alice", 1);
        CHECK(reply.text.find("cloud") != std::string::npos);
    }
    SECTION("a product that does not use IDs gets its portal, nothing deducted") {
        d.send("alice@example.test",
               requestMail("alice@example.test", "Mailbox quota", fields(d.goldAccess, d.goldContract, "Office 365", "B")),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        CHECK(d.balance("gold") == 20);
        auto reply = d.lastMail("alice", 1);
        CHECK(reply.text.find("https://portal.office.com") != std::string::npos);
    }
    SECTION("Vietnamese labels in an HTML-only mail are accepted and answered in Vietnamese") {
        std::string html =
            "<html><body><p>Xin chào,</p><p><b>ID truy cập:</b> " + d.silverAccess + "<br>" +
            "<b>ID hợp đồng:</b> " + d.silverContract + "<br><b>Sản phẩm:</b> SQL Server 2022<br>" +
            "<b>Mức độ nghiêm trọng:</b> B<br><b>Mô tả:</b> Cơ sở dữ liệu chạy rất chậm.</p></body></html>";
        std::string raw = "From: =?UTF-8?B?" + std::string("Tmd1eeG7hW4gVsSDbiBBbg==") +
                          "?= <erin@example.test>\r\nTo: support@example.test\r\nSubject: =?UTF-8?Q?Y=C3=AAu_c=E1=BA=A7u_h=E1=BB=97_tr=E1=BB=A3?=\r\n"
                          "Date: Thu, 26 Nov 2026 10:00:00 +0700\r\nMessage-ID: <vi." +
                          std::to_string(Poco::Timestamp().epochMicroseconds()) +
                          "@songhong.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n\r\n" + html + "\r\n";
        d.send("erin@example.test", raw, 1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
        CHECK(d.balance("silver") == 9);
        std::string severity;
        d.db->session() << "SELECT severity FROM incidents", into(severity), now;
        CHECK(severity == "B");
        auto reply = d.lastMail("erin", 1);
        CHECK(reply.text.find("SR-") != std::string::npos);
        CHECK(reply.text.find("Nguyễn Văn An") != std::string::npos);
        CHECK(reply.raw.find("=?UTF-8?") != std::string::npos);
    }
    SECTION("a forged DSN naming a contact, for mail we never sent, changes nothing and is never answered") {
        auto dsn = [](const std::string& returnedHeaders) {
            return "From: Mail Delivery System <MAILER-DAEMON@mail.example.test>\r\nTo: support@example.test\r\n"
                   "Subject: Undelivered Mail Returned to Sender\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
                   "Message-ID: <dsn." + std::to_string(Poco::Timestamp().epochMicroseconds()) + "@mail.example.test>\r\n"
                   "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n"
                   "--B1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n"
                   "--B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.test\r\n\r\n"
                   "Final-Recipient: rfc822; bob@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                   "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
                   "--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n" + returnedHeaders + "--B1--\r\n";
        };
        // Forged: names bob, but for a mail we never sent.
        d.send("", dsn("From: support@example.test\r\nTo: bob@example.test\r\nSubject: IDs\r\n"
                       "Message-ID: <never-sent.1@elsewhere.example>\r\n"), 1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM contacts WHERE email = 'bob@example.test' AND address_state = 'bouncing'") == 0);
        CHECK(d.scalar("SELECT COUNT(*) FROM bounces WHERE outbox_ref IS NULL AND acted = 0") == 1);
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'admin_bounce'") == 0);
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply%'") == 0);
    }
    SECTION("an out-of-office reply is never answered") {
        d.send("alice@example.test",
               requestMail("alice@example.test", "Out of office: Help", "I am away until Monday.\r\n",
                           "Auto-Submitted: auto-replied\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM inbound WHERE classification = 'auto_reply'") == 1);
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply%'") == 0);
        CHECK(smtest::fetchAll(d.env, "alice", "alice-pw").empty());
    }
}

TEST_CASE("crashes between storing and marking, and before committing, lose and double nothing",
          "[integration][requests][crash]") {
    Desk d;
    d.send("alice@example.test",
           requestMail("alice@example.test", "Crash test", fields(d.goldAccess, d.goldContract, "Windows Server", "B")), 1);

    // Killed after the raw mail is committed, before it is marked on the server.
    auto killed = d.run({"fetch"}, {"SUPPORTMAIL_CRASH_AT=fetch.after_commit"});
    CHECK(killed.exitCode != 0);
    CHECK(d.scalar("SELECT COUNT(*) FROM inbound") == 1);
    auto again = d.run({"fetch"});
    CHECK(again.out.find("0 new, 1 already stored") != std::string::npos);
    CHECK(d.scalar("SELECT COUNT(*) FROM inbound") == 1);

    // Killed with the incident written but not committed.
    auto killed2 = d.run({"process"}, {"SUPPORTMAIL_CRASH_AT=process.before_commit"});
    CHECK(killed2.exitCode != 0);
    CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
    CHECK(d.scalar("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 1);
    CHECK(d.balance("gold") == 20);

    d.run({"process"});
    d.run({"process"});
    CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(d.balance("gold") == 19);
    CHECK(d.scalar("SELECT COUNT(*) FROM ledger WHERE delta = -1") == 1);
    CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:accepted'") == 1);
}

TEST_CASE("a mail over the size limit is recorded as rejected and its sender told", "[integration][requests]") {
    Desk d("process.max_message_bytes = 2048\n");
    std::string big(6000, 'x');
    for (std::size_t i = 70; i < big.size(); i += 72) big[i] = '\n';
    d.send("alice@example.test", requestMail("alice@example.test", "Huge logs", big), 1);
    d.cycle();
    CHECK(d.scalar("SELECT COUNT(*) FROM inbound WHERE state = 'rejected'") == 1);
    CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
    auto reply = d.lastMail("alice", 1);
    CHECK(reply.raw.find("Auto-Submitted: auto-replied") != std::string::npos);
    CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:too_large'") == 1);
}

namespace {

// Every mail in every test mailbox, decoded: for "nobody else got the IDs".
std::map<std::string, std::vector<std::string>> allMailboxes(Desk& d) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& u : kUsers)
        if (u != "support") out[u] = smtest::fetchAll(d.env, u, u + "-pw");
    return out;
}

bool anyContains(const std::vector<std::string>& mails, const std::string& needle) {
    for (const auto& m : mails)
        if (m.find(needle) != std::string::npos) return true;
    return false;
}

void requireLedgerMatchesBalance(Desk& d) {
    // The balance is the ledger's sum and never negative, per contract.
    CHECK(d.scalar("SELECT COUNT(*) FROM (SELECT contract_ref, SUM(delta) s FROM ledger GROUP BY contract_ref) "
                   "WHERE s < 0") == 0);
}

}  // namespace

TEST_CASE("resends by mail: primary, same country in EMEA, APAC, a stranger", "[integration][resend]") {
    Desk d;
    SECTION("from the primary contact: the IDs go to the primary, plus the neutral answer") {
        d.send("alice@example.test", requestMail("alice@example.test", "Please resend our IDs",
                                                 "We lost the mail. Please resend the Access ID and Contract ID.\r\n"),
               1);
        d.cycle();
        auto alice = smtest::waitForMessages(d.env, "alice", "alice-pw", 3, 10000);
        REQUIRE(alice.size() == 3);  // gold, SCS, acknowledgement
        CHECK(anyContains(alice, d.goldAccess));
        CHECK(anyContains(alice, d.scsAccess));
        CHECK(d.scalar("SELECT COUNT(*) FROM resends WHERE outcome = 'sent'") == 1);
    }
    SECTION("from another contact in the same country in EMEA: the IDs also to that contact") {
        d.send("bob@example.test", requestMail("bob@example.test", "resend IDs please", "Please resend our IDs.\r\n"), 1);
        d.cycle();
        auto bob = smtest::waitForMessages(d.env, "bob", "bob-pw", 3, 10000);
        REQUIRE(bob.size() == 3);
        CHECK(anyContains(bob, d.goldAccess));
        auto alice = smtest::waitForMessages(d.env, "alice", "alice-pw", 2, 10000);
        CHECK(alice.size() == 2);  // the primary gets them too (no acknowledgement)
    }
    SECTION("from a member in APAC: the IDs to the primary only") {
        d.send("frank@example.test", requestMail("frank@example.test", "Gửi lại ID", "Please resend our IDs.\r\n"), 1);
        d.cycle();
        auto erin = smtest::waitForMessages(d.env, "erin", "erin-pw", 1, 10000);
        REQUIRE(erin.size() == 1);
        CHECK(anyContains(erin, d.silverAccess));
        auto frank = smtest::waitForMessages(d.env, "frank", "frank-pw", 1, 10000);
        REQUIRE(frank.size() == 1);  // the acknowledgement only
        CHECK_FALSE(anyContains(frank, d.silverAccess));
    }
    SECTION("from a stranger: the same neutral answer, no IDs anywhere") {
        d.send("mallory@example.test",
               requestMail("mallory@example.test", "Please resend the IDs of partner 4648141",
                           "Please resend the IDs of partner 4648141.\r\n"),
               1);
        d.cycle();
        auto mallory = smtest::waitForMessages(d.env, "mallory", "mallory-pw", 1, 10000);
        REQUIRE(mallory.size() == 1);
        auto boxes = allMailboxes(d);
        for (const auto& [user, mails] : boxes) {
            INFO(user);
            const std::size_t expected = user == "mallory" ? 1 : 0;
            CHECK(mails.size() == expected);
            for (const auto& id : {d.goldAccess, d.scsAccess, d.silverAccess, d.goldContract})
                CHECK_FALSE(anyContains(mails, id));
        }
        CHECK(d.scalar("SELECT COUNT(*) FROM resends WHERE outcome = 'unknown_sender'") == 1);
        // The stranger's answer reads exactly like the primary's acknowledgement.
        CHECK(mallory[0].find("program contact on record") != std::string::npos);
    }
    requireLedgerMatchesBalance(d);
}

TEST_CASE("an Action Pack benefit is activated by a mail from the partner's contact", "[integration][action-pack]") {
    Desk d;
    std::string renewals = d.dir.file("ap.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n7001234,action_pack," +
                                    smtest::today() + "\n");
    d.run({"import-renewals", renewals});
    d.run({"activate"});
    CHECK(d.scalar("SELECT COUNT(*) FROM contracts WHERE plan_key = 'action_pack'") == 0);
    d.send("grace@example.test",
           requestMail("grace@example.test", "Please activate our Action Pack support",
                       "Hello, please activate our Action Pack support benefit.\r\n"),
           1);
    d.cycle();
    CHECK(d.scalar("SELECT COUNT(*) FROM contracts WHERE plan_key = 'action_pack'") == 1);
    std::string access;
    d.db->session() << "SELECT access_id FROM contracts WHERE plan_key = 'action_pack'", into(access), now;
    auto grace = smtest::waitForMessages(d.env, "grace", "grace-pw", 2, 10000);
    REQUIRE(grace.size() == 2);  // the ID mail (grace is the primary) and the acknowledgement
    CHECK(anyContains(grace, access));
    CHECK(d.balance("action_pack") == 5);
    requireLedgerMatchesBalance(d);
}

TEST_CASE("a benefits query lists the balance, expiry and cases", "[integration][benefits]") {
    Desk d;
    d.send("alice@example.test",
           requestMail("alice@example.test", "Cluster", fields(d.goldAccess, d.goldContract, "Windows Server", "C")), 1);
    d.cycle();
    d.send("alice@example.test", requestMail("alice@example.test", "What is our balance?",
                                             "How many incidents do we have left?\r\n"),
           2);
    d.cycle();
    auto reply = d.lastMail("alice", 2);
    std::string caseNumber;
    d.db->session() << "SELECT case_number FROM incidents", into(caseNumber), now;
    CHECK(reply.text.find("19") != std::string::npos);
    CHECK(reply.text.find(caseNumber) != std::string::npos);
    CHECK(reply.text.find("Gold-4648141") != std::string::npos);
    CHECK(reply.text.find("SCS-4648141") != std::string::npos);
    CHECK(reply.text.find(d.goldAccess) == std::string::npos);
    requireLedgerMatchesBalance(d);
}

TEST_CASE("with authentication required, an unauthenticated resend sends no IDs", "[integration][resend][auth]") {
    Desk d("process.require_authentication = true\n");
    d.send("alice@example.test",
           requestMail("alice@example.test", "Please resend our IDs", "Please resend.\r\n", "", false), 1);
    d.cycle();
    auto alice = smtest::waitForMessages(d.env, "alice", "alice-pw", 1, 10000);
    REQUIRE(alice.size() == 1);  // the neutral acknowledgement only
    CHECK_FALSE(anyContains(alice, d.goldAccess));
    CHECK(d.scalar("SELECT COUNT(*) FROM resends WHERE outcome = 'not_authenticated'") == 1);
}

// Issue 11 end to end: a forger writes bob's From with its own Reply-To, through the
// real Postfix, without our MX's vouching header; mallory's mailbox is read afterwards.
TEST_CASE("a forged From with the forger's Reply-To gets nothing and spends nothing over the real servers",
          "[integration][auth][trust]") {
    Desk d;  // process.require_authentication is on by default
    // bob asks once with the IDs, through our MX: a case, his address linked to gold.
    d.send("bob@example.test",
           requestMail("Bob Weber <bob@example.test>", "Cluster fails over",
                       fields(d.goldAccess, d.goldContract, "Windows Server 2019", "B")),
           1);
    d.cycle();
    REQUIRE(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
    REQUIRE(d.scalar("SELECT COUNT(*) FROM sender_links WHERE email = 'bob@example.test'") == 1);
    const int balance = d.balance("gold");
    REQUIRE(d.lastMail("bob", 1).text.find("SR-") != std::string::npos);

    const std::string replyTo = "Reply-To: mallory@example.test\r\n";
    // A request without IDs through bob's link, a balance query and a resend request.
    d.send("mallory@example.test",
           requestMail("Bob Weber <bob@example.test>", "Another problem",
                       "Product: Windows Server 2019\r\nSeverity: B\r\nDescription: please open a case\r\n", replyTo,
                       false),
           2);
    d.send("mallory@example.test",
           requestMail("Bob Weber <bob@example.test>", "Our balance", "What is our balance? List our open cases.\r\n",
                       replyTo, false),
           3);
    d.send("mallory@example.test",
           requestMail("Bob Weber <bob@example.test>", "Please resend our IDs", "Please resend.\r\n", replyTo, false),
           4);
    d.cycle();

    CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(d.balance("gold") == balance);
    CHECK(d.scalar("SELECT COUNT(*) FROM resends WHERE outcome = 'not_authenticated'") == 1);
    // The answers went to bob, the address on record: the refusal, the balance (listing
    // nothing) and the neutral resend acknowledgement; no IDs among them.
    auto bob = smtest::waitForMessages(d.env, "bob", "bob-pw", 4, 10000);
    REQUIRE(bob.size() == 4);
    CHECK_FALSE(anyContains(bob, d.goldAccess));
    // Every mail of that deliver run has landed: mallory's mailbox is empty.
    CHECK(smtest::waitForMessages(d.env, "mallory", "mallory-pw", 1, 2000).empty());
    CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%mallory%'") == 0);
}

TEST_CASE("a non-decrement closure credits the incident back and tells the requester", "[integration][cases]") {
    Desk d;
    d.send("alice@example.test",
           requestMail("Alice Schmidt <alice@example.test>", "Printer queue stuck",
                       fields(d.goldAccess, d.goldContract, "Windows Server", "C")),
           1);
    d.cycle();
    REQUIRE(d.balance("gold") == 19);
    std::string caseNumber;
    d.db->session() << "SELECT case_number FROM incidents", into(caseNumber), now;
    auto close = d.run({"case", "close", caseNumber, "--non-decrement", "--note", "a product defect, not yours"});
    CHECK(close.exitCode == 0);
    CHECK(d.balance("gold") == 20);
    auto twice = d.run({"case", "close", caseNumber, "--non-decrement"}, {"X_SECOND=1"});
    CHECK(twice.exitCode == 65);
    CHECK(twice.err.find("already closed") != std::string::npos);
    CHECK(d.balance("gold") == 20);
    d.run({"deliver"});
    auto told = d.lastMail("alice", 2);  // the confirmation, then the closure
    CHECK(told.subject.find(caseNumber) != std::string::npos);
    CHECK(told.text.find("credited back") != std::string::npos);
    CHECK(told.text.find("a product defect, not yours") != std::string::npos);
    requireLedgerMatchesBalance(d);
}
