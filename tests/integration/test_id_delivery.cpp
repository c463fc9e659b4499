// Import → activate → deliver through the real Postfix, read back from the real
// Dovecot over IMAP: recipients, language, IDs, headers, and the validator's
// verdict on the bytes that arrived. Then the failure paths of delivery against
// the same real server: down, 5xx, 4xx.
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;
using smtest::runSupportmail;

namespace {

using smtest::today;

// A mail to retry is not due again within a test (the 4xx case checks when it is).
const std::string kRetryLater = "delivery.retry_initial = 300\n";

// The independent parse of ../shared/tools/validate_eml.py.
Poco::JSON::Object::Ptr extract(const std::string& file) {
    auto r = smtest::extractEml(file);
    REQUIRE(r.exitCode == 0);
    return Poco::JSON::Parser().parse(r.out).extract<Poco::JSON::Object::Ptr>();
}

std::string header(const std::string& mail, const std::string& name) {
    std::string needle = "\r\n" + name + ": ";
    auto p = mail.find(needle);
    if (p == std::string::npos) return "";
    auto e = mail.find("\r\n", p + needle.size());
    return mail.substr(p + needle.size(), e - p - needle.size());
}

}  // namespace

TEST_CASE("ID mails reach the primary contact's mailbox over real SMTP and IMAP", "[integration][id-mail]") {
    REQUIRE(smtest::fileExists(smtest::sharedDir() + "/tools/validate_eml.py"));
    smtest::MailServers s;
    s.reset({"alice", "bob", "carol", "dave", "erin", "frank"});
    smtest::TempDir dir;
    std::string conf = s.smtpConfig(dir, kRetryLater);
    REQUIRE(runSupportmail({"--config", conf, "import-partners", smtest::writeSamplePartners(dir)}).exitCode == 0);
    std::string renewals = dir.file("renewals.csv");
    smtest::writeFile(renewals,
                      "partner_id,benefit,renewal_date,location_id\n4648141,gold," + today() + ",\n5102233,silver," +
                          today() + ",\n");
    REQUIRE(runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
    auto act = runSupportmail({"--config", conf, "activate"});
    INFO(act.err);
    REQUIRE(act.exitCode == 0);
    auto del = runSupportmail({"--config", conf, "deliver"}, s.auth());
    INFO(del.err);
    REQUIRE(del.exitCode == 0);
    CHECK(del.out.find("2 sent") != std::string::npos);
    CHECK(del.err.find("support-pw") == std::string::npos);

    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    std::string goldAccess, goldContract, silverAccess, silverContract;
    db->session() << "SELECT access_id, contract_id FROM contracts WHERE partner_id = '4648141'", into(goldAccess),
        into(goldContract), now;
    db->session() << "SELECT access_id, contract_id FROM contracts WHERE partner_id = '5102233'", into(silverAccess),
        into(silverContract), now;
    std::vector<std::string> messageIds;
    db->session() << "SELECT message_id FROM outbox ORDER BY id", into(messageIds), now;
    REQUIRE(messageIds.size() == 2);

    SECTION("EMEA: the HQ primary (To) and the same-country member (Cc), in English") {
        auto alice = smtest::waitForMessages(s.env, "alice", "alice-pw", 1, 10000);
        REQUIRE(alice.size() == 1);
        const std::string& mail = alice[0];
        std::string file = dir.file("alice.eml");
        smtest::writeFile(file, mail);
        auto check = smtest::checkEml(file);
        INFO(check.out << check.err);
        CHECK(check.exitCode == 0);

        auto parsed = extract(file);
        std::string text = parsed->getValue<std::string>("text");
        CHECK(text.find(goldAccess) != std::string::npos);
        CHECK(text.find(goldContract) != std::string::npos);
        CHECK(text.find(silverAccess) == std::string::npos);
        CHECK(text.find("Access ID") != std::string::npos);
        auto to = parsed->getArray("to");
        REQUIRE(to->size() == 1);
        CHECK(to->getObject(0)->getValue<std::string>("addr") == "alice@example.test");
        CHECK(header(mail, "Cc").find("bob@example.test") != std::string::npos);
        CHECK(header(mail, "Auto-Submitted") == "auto-generated");
        CHECK(header(mail, "Message-ID") == messageIds[0]);
        CHECK_FALSE(header(mail, "Date").empty());
        CHECK(header(mail, "MIME-Version") == "1.0");
        CHECK(parsed->getValue<bool>("has_html"));

        auto bob = smtest::waitForMessages(s.env, "bob", "bob-pw", 1, 10000);
        REQUIRE(bob.size() == 1);
        CHECK(header(bob[0], "Message-ID") == messageIds[0]);
    }
    SECTION("APAC: the Vietnamese primary only, in Vietnamese") {
        auto erin = smtest::waitForMessages(s.env, "erin", "erin-pw", 1, 10000);
        REQUIRE(erin.size() == 1);
        std::string file = dir.file("erin.eml");
        smtest::writeFile(file, erin[0]);
        auto check = smtest::checkEml(file);
        INFO(check.out << check.err);
        CHECK(check.exitCode == 0);
        auto parsed = extract(file);
        std::string text = parsed->getValue<std::string>("text");
        CHECK(text.find(silverAccess) != std::string::npos);
        CHECK(text.find(silverContract) != std::string::npos);
        CHECK(text.find("ID truy cập") != std::string::npos);
        std::string subject = parsed->getValue<std::string>("subject");
        CHECK(subject.find("Sông Hồng Software") != std::string::npos);
        CHECK(erin[0].find("=?UTF-8?") != std::string::npos);  // encoded words, not raw 8-bit headers
    }
    SECTION("nobody else received IDs") {
        // Give the server time to deliver everything that was accepted.
        smtest::waitForMessages(s.env, "erin", "erin-pw", 1, 10000);
        smtest::waitForMessages(s.env, "bob", "bob-pw", 1, 10000);
        CHECK(smtest::fetchAll(s.env, "dave", "dave-pw").empty());   // GB: another country
        CHECK(smtest::fetchAll(s.env, "frank", "frank-pw").empty()); // VN member: APAC has no regional rule
        CHECK(smtest::fetchAll(s.env, "carol", "carol-pw").empty()); // location primary: no kit
    }
}

TEST_CASE("delivery failure paths against the real server", "[integration][deliver]") {
    smtest::MailServers s;
    smtest::TempDir dir;
    std::string partners = dir.file("partners.csv");
    smtest::writeFile(partners,
                      "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,"
                      "contact_country,contact_language\n"
                      "100,Unknown Mailbox Ltd,gold,VN,nosuchuser@example.test,Nobody,hq_primary,VN,en\n"
                      "200,Busy Server Ltd,gold,VN,tempfail@example.test,Temp Fail,hq_primary,VN,en\n");
    std::string renewals = dir.file("renewals.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n100,gold," + today() + "\n200,gold," + today() + "\n");

    SECTION("server down: exit 75, everything stays queued") {
        std::string conf = s.smtpConfig(dir, kRetryLater, 1);
        REQUIRE(runSupportmail({"--config", conf, "import-partners", partners}).exitCode == 0);
        REQUIRE(runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
        REQUIRE(runSupportmail({"--config", conf, "activate"}).exitCode == 0);
        auto r = runSupportmail({"--config", conf, "deliver"}, s.auth());
        CHECK(r.exitCode == 75);
        CHECK(r.err.find("unavailable") != std::string::npos);
        auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
        int queued = 0, sent = 0, parked = 0;
        db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'queued'", into(queued), now;
        db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'sent'", into(sent), now;
        db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'parked'", into(parked), now;
        CHECK(queued == 2);
        CHECK(sent == 0);
        CHECK(parked == 0);
    }
    SECTION("5xx parks with the reply; 4xx is retried later with the same bytes") {
        std::string conf = s.smtpConfig(dir, kRetryLater);
        REQUIRE(runSupportmail({"--config", conf, "import-partners", partners}).exitCode == 0);
        REQUIRE(runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
        REQUIRE(runSupportmail({"--config", conf, "activate"}).exitCode == 0);
        auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
        std::string bytesBefore;
        db->session() << "SELECT COALESCE(b.bytes, '') FROM outbox o LEFT JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.recipients = 'tempfail@example.test'", into(bytesBefore), now;

        auto r = runSupportmail({"--config", conf, "deliver"}, s.auth());
        INFO(r.err);
        CHECK(r.exitCode == 0);
        CHECK(r.out.find("0 sent, 1 to retry, 1 parked") != std::string::npos);

        std::string parkedReply, retryReply, bytesAfter;
        int attempts = 0;
        std::int64_t next = 0;
        db->session() << "SELECT last_reply FROM outbox WHERE state = 'parked' AND recipients = 'nosuchuser@example.test'",
            into(parkedReply), now;
        CHECK(parkedReply.find("550") != std::string::npos);
        db->session() << "SELECT o.last_reply, o.attempts, o.next_attempt_at, COALESCE(b.bytes, '') FROM outbox o LEFT JOIN outbox_bytes b ON b.outbox_id = o.id "
                         "WHERE o.state = 'queued' AND o.recipients = 'tempfail@example.test'",
            into(retryReply), into(attempts), into(next), into(bytesAfter), now;
        CHECK(retryReply.find("451") != std::string::npos);
        CHECK(attempts == 1);
        CHECK(next >= sm::store::Database::nowSeconds() + 250);  // retry_initial = 300 s
        CHECK(bytesAfter == bytesBefore);

        // Not due yet: a second run sends nothing and changes nothing.
        auto again = runSupportmail({"--config", conf, "deliver"}, s.auth());
        CHECK(again.out.find("0 sent, 0 to retry, 0 parked") != std::string::npos);

        // Once due, it is tried again with the same Message-ID (still 4xx here).
        db->session() << "UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued'", now;
        auto third = runSupportmail({"--config", conf, "deliver"}, s.auth());
        CHECK(third.out.find("1 to retry") != std::string::npos);
        db->session() << "SELECT attempts FROM outbox WHERE state = 'queued'", into(attempts), now;
        CHECK(attempts == 2);
    }
}
