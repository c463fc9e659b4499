// Issue 11 through the real binary on SQLite, a Maildir inbox and a spool: a forged
// sender gets and spends nothing, answers about a contract go to the address on record,
// a bounce acts only on mail we sent, delivered ID mails keep no IDs, every disclosure
// is listed, and a contact the CRM dropped asks for nothing.
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/cli_site.h"

using namespace Poco::Data::Keywords;

namespace {

// What our MX (the topmost Authentication-Results; the test configuration names no
// authserv-id) writes for a mail whose From it could verify.
const std::string kVouched = "Authentication-Results: mx.example.test; dmarc=pass header.from=example.test\r\n";

struct Site : smtest::CliSite {
    std::string access, contract;
    int n = 0;

    explicit Site(const std::string& extra = "") : CliSite({"4648141,gold"}, extra) {
        db->session() << "SELECT access_id, contract_id FROM contracts", into(access), into(contract), now;
        REQUIRE(!access.empty());
    }

    /// A mail into the inbox: headers (each ending CRLF) above From, then the body.
    void mail(const std::string& headers, const std::string& body, const std::string& contentType = "text/plain") {
        ++n;
        std::string raw = headers + "To: support@example.test\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n" +
                          "Message-ID: <trust" + std::to_string(n) + "." +
                          std::to_string(Poco::Timestamp().epochMicroseconds()) + "@partner.example>\r\n" +
                          "MIME-Version: 1.0\r\nContent-Type: " + contentType + "\r\n\r\n" + body;
        putInInbox(raw);
    }

    std::string requestBody(bool withIds) const {
        return std::string(withIds ? "Access ID: " + access + "\r\nContract ID: " + contract + "\r\n" : "") +
               "Product: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
               "Category: Cluster\r\nSeverity: B\r\nDescription: the cluster stops\r\n";
    }

    /// A DSN from the partner's MX for a mail to `failed`, returning headers with
    /// `returnedMessageId`, to `to` (our support address, or a VERP address).
    void dsn(const std::string& failed, const std::string& returnedMessageId, const std::string& to) {
        ++n;
        std::string raw =
            "From: MAILER-DAEMON@mx.example.test\r\nTo: " + to + "\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <dsn" + std::to_string(n) + "." +
            std::to_string(Poco::Timestamp().epochMicroseconds()) + "@mx.example.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n"
            "--R\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n"
            "Final-Recipient: rfc822; " + failed + "\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n" +
            (returnedMessageId.empty()
                 ? std::string()
                 : "--R\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.test\r\nTo: " + failed +
                       "\r\nSubject: Your IDs\r\nMessage-ID: " + returnedMessageId + "\r\n\r\n") +
            "--R--\r\n";
        putInInbox(raw);
    }

    std::int64_t balance() { return scalar("SELECT SUM(delta) FROM ledger"); }
    void noClearIds(const std::string& output) {
        CHECK(output.find(access) == std::string::npos);
        CHECK(output.find(contract) == std::string::npos);
    }
};

}  // namespace

TEST_CASE("a forged From with its own Reply-To opens no case, debits nothing and gets nothing", "[cli][trust]") {
    Site s;
    // bob asks with the IDs, through our MX: a case, and his address linked to the contract.
    s.mail(kVouched + "From: Bob Weber <bob@example.test>\r\nSubject: cluster down\r\n", s.requestBody(true));
    s.run({"fetch"});
    s.run({"process"});
    REQUIRE(s.scalar("SELECT COUNT(*) FROM incidents") == 1);
    REQUIRE(s.scalar("SELECT COUNT(*) FROM sender_links WHERE email = 'bob@example.test'") == 1);
    const auto balance = s.balance();

    // The forger: bob's From, no IDs, no Authentication-Results, its own Reply-To; a
    // request through bob's link and a balance query.
    const std::string forged = "From: Bob Weber <bob@example.test>\r\nReply-To: mallory@evil.example\r\n";
    s.mail(forged + "Subject: another problem\r\n", s.requestBody(false));
    s.mail(forged + "Subject: balance\r\n", "What is our balance? Please list our open cases.\r\n");
    // A resend request forged the same way.
    s.mail(forged + "Subject: resend\r\n", "Please resend our IDs.\r\n");
    s.run({"fetch"});
    auto processed = s.run({"process"});
    s.run({"deliver"});

    CHECK(s.scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(s.balance() == balance);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%evil.example%'") == 0);
    CHECK(s.scalar("SELECT COUNT(*) FROM resends WHERE outcome = 'not_authenticated'") == 1);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'") == 1);  // the activation's only
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound WHERE reason LIKE '%sender not authenticated%'") == 2);
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound WHERE reason = 'refused: missing_ids'") == 1);
    // The balance answer went to bob, listing nothing.
    const std::string benefits = s.text("SELECT b.bytes FROM outbox o JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.kind = 'reply:benefits'");
    CHECK(benefits.find("To: Bob Weber <bob@example.test>") != std::string::npos);
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound WHERE reason = 'benefits: 0 contracts listed, sender not "
                   "authenticated'") == 1);
    for (const auto& f : smtest::listFiles(s.spool + "/new"))
        CHECK(smtest::readFile(f).find("evil.example") == std::string::npos);
}

TEST_CASE("answers about a contract go to the From on record, never to a Reply-To", "[cli][trust]") {
    Site s;
    s.mail(kVouched + "From: bob@example.test\r\nReply-To: someone@elsewhere.example\r\nSubject: slow\r\n",
           s.requestBody(true));
    s.mail(kVouched + "From: alice@example.test\r\nReply-To: other@elsewhere.example\r\nSubject: balance\r\n",
           "What is our balance?\r\n");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(s.text("SELECT recipients FROM outbox WHERE kind = 'reply:accepted'") == "bob@example.test");
    CHECK(s.text("SELECT recipients FROM outbox WHERE kind = 'reply:benefits'") == "alice@example.test");
    // alice is the hq_primary: her answer lists the contract.
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound WHERE sender = 'alice@example.test' AND "
                   "reason = 'benefits: 1 contracts listed'") == 1);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%elsewhere.example%'") == 0);
}

TEST_CASE("a bounce marks a contact only when it is about mail we sent", "[cli][trust]") {
    Site s("delivery.bounce_address = bounces@example.test\n");
    s.run({"deliver"});
    const auto idMail = s.scalar("SELECT id FROM outbox WHERE kind = 'id_mail'");
    const std::string idMessageId = s.text("SELECT message_id FROM outbox WHERE kind = 'id_mail'");
    const std::string primary = s.text("SELECT recipients FROM outbox WHERE kind = 'id_mail'").substr(0, 18);
    REQUIRE(primary == "alice@example.test");

    // Forged: names alice, returns a Message-ID we never sent, to our support address.
    s.dsn("alice@example.test", "<never-sent.1@example.test>", "support@example.test");
    // Forged: no returned headers at all.
    s.dsn("bob@example.test", "", "support@example.test");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.scalar("SELECT COUNT(*) FROM contacts WHERE address_state = 'bouncing'") == 0);
    CHECK(s.scalar("SELECT COUNT(*) FROM bounces WHERE acted = 0 AND outbox_ref IS NULL AND matched_by = 'none'") == 2);
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound WHERE classification = 'stray_bounce' AND "
                   "reason LIKE 'unanswered: stray_bounce: %nothing changed'") == 2);
    CHECK(s.run({"status"}).out.find("2 stray_bounce") != std::string::npos);

    // Ours by the returned Message-ID: alice is marked.
    s.dsn("alice@example.test", idMessageId, "support@example.test");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.text("SELECT address_state FROM contacts WHERE email = 'alice@example.test'") == "bouncing");
    CHECK(s.scalar("SELECT COUNT(*) FROM bounces WHERE matched_by = 'message_id' AND acted = 1 AND outbox_ref = " +
                   std::to_string(idMail)) == 1);

    // Ours by VERP (bounces+ID@), without returned headers: marked again after an unblock;
    // a VERP bounce naming an address that mail was not sent to changes nothing.
    s.run({"contact", "unblock", "alice@example.test"});
    s.dsn("alice@example.test", "", "bounces+" + std::to_string(idMail) + "@example.test");
    s.dsn("grace@example.test", "", "bounces+" + std::to_string(idMail) + "@example.test");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.text("SELECT address_state FROM contacts WHERE email = 'alice@example.test'") == "bouncing");
    CHECK(s.text("SELECT address_state FROM contacts WHERE email = 'grace@example.test'") == "ok");
    CHECK(s.scalar("SELECT COUNT(*) FROM bounces WHERE matched_by = 'verp'") == 2);
    CHECK(s.scalar("SELECT COUNT(*) FROM bounces WHERE matched_by = 'verp' AND acted = 1") == 1);
}

TEST_CASE("a delivered ID mail keeps headers and a digest, and every disclosure is listed with IDs masked",
          "[cli][trust]") {
    Site s;
    // Activation queues the ID mail without its bytes (deliver renders it from `contracts`):
    // the IDs are not at rest in the outbox even before delivery.
    REQUIRE(s.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'") == 1);
    CHECK(s.text("SELECT COALESCE(b.bytes, '') FROM outbox o LEFT JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.kind = 'id_mail'").find(s.access) == std::string::npos);
    s.run({"deliver"});
    const std::string kept = s.text("SELECT COALESCE(b.bytes, '') FROM outbox o LEFT JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.kind = 'id_mail'");
    s.noClearIds(kept);
    CHECK(kept.find("Message-ID: ") != std::string::npos);
    CHECK(kept.find("body removed after delivery") != std::string::npos);
    CHECK(s.text("SELECT bytes_sha256 FROM outbox WHERE kind = 'id_mail'").size() == 64);
    // What was delivered still holds them (the mail itself is the one copy out).
    int inSpool = 0;
    for (const auto& f : smtest::listFiles(s.spool + "/new"))
        if (smtest::readFile(f).find(s.access) != std::string::npos) ++inSpool;
    CHECK(inSpool == 1);

    // A resend renders the mail again from `contracts`.
    s.mail(kVouched + "From: bob@example.test\r\nSubject: resend\r\n", "Please resend our IDs.\r\n");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail' AND state = 'queued'") == 1);
    CHECK(s.text("SELECT COALESCE(b.bytes, '') FROM outbox o LEFT JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.kind = 'id_mail' AND o.state = 'queued'").find(s.access) !=
          std::string::npos);

    auto out = s.run({"contract", "disclosures", "#1"}).out;
    INFO(out);
    s.noClearIds(out);
    CHECK(out.find("activation_hq_primary") != std::string::npos);
    CHECK(out.find("resend") != std::string::npos);
    CHECK(out.find("alice@example.test") != std::string::npos);
    CHECK(out.find(" disclosures\n") != std::string::npos);
    CHECK(s.scalar("SELECT COUNT(*) FROM disclosures") >= 2);
    CHECK(s.scalar("SELECT COUNT(*) FROM disclosures d JOIN outbox o ON o.id = d.outbox_ref "
                   "WHERE o.message_id = d.message_id") == s.scalar("SELECT COUNT(*) FROM disclosures"));
}

TEST_CASE("a contact the CRM dropped cannot ask for a resend, and the refusal is recorded", "[cli][trust]") {
    Site s;
    const std::string csv = s.dir.file("partners2.csv");
    smtest::writeFile(csv,
                      "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,"
                      "contact_country,contact_language,location_id,location_name,location_country\n"
                      "4648141,Contoso Cloud Partners,gold,DE,bob@example.test,Bob Weber,hq_primary,DE,en,,,\n"
                      "4648141,Contoso Cloud Partners,gold,DE,carol@example.test,Carol Dupont,location_primary,FR,en,"
                      "CON-PAR,Contoso Paris,FR\n");
    auto imported = s.run({"import-partners", csv});
    CHECK(imported.out.find("1 promoted, 0 demoted, 2 deactivated") != std::string::npos);
    s.run({"deliver"});
    // alice (the old primary, now inactive), through our MX, asks for the IDs; then bob.
    s.mail(kVouched + "From: alice@example.test\r\nSubject: resend\r\n", "Please resend our IDs.\r\n");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.scalar("SELECT COUNT(*) FROM resends WHERE outcome = 'inactive_contact' AND sender = "
                   "'alice@example.test'") == 1);
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound WHERE reason LIKE '%CRM no longer lists%'") == 1);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail' AND state = 'queued'") == 0);
    s.mail(kVouched + "From: bob@example.test\r\nSubject: resend\r\n", "Please resend our IDs.\r\n");
    s.run({"fetch"});
    s.run({"process"});
    CHECK(s.text("SELECT recipients FROM outbox WHERE kind = 'id_mail' AND state = 'queued'") == "bob@example.test");
}

TEST_CASE("a request with both IDs but no vouching sender is answered, its address left unlinked, below notice",
          "[cli][trust]") {
    Site s;
    s.mail("From: Bob Weber <bob@example.test>\r\nSubject: cluster down\r\n", s.requestBody(true));
    s.run({"fetch"});
    auto processed = s.run({"--verbose", "process"});
    // The IDs are the credential: the case is opened and debited; only the link waits for
    // a mail our MX vouches for.
    CHECK(s.scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(s.scalar("SELECT COUNT(*) FROM sender_links WHERE email = 'bob@example.test'") == 0);
    const std::string out = processed.out + processed.err;
    auto at = out.find("its address is not linked to the contract");
    REQUIRE(at != std::string::npos);  // said, never silent
    const std::string line = out.substr(out.rfind('\n', at) + 1, at - out.rfind('\n', at));
    INFO(line);
    // An answered request is not a refusal: at notice it would reach cron's mail for
    // every request of a site whose MX adds no Authentication-Results.
    CHECK(line.find(" notice ") == std::string::npos);
    CHECK(line.find(" information ") != std::string::npos);
    // At the default level it is not printed at all.
    s.mail("From: Bob Weber <bob@example.test>\r\nSubject: cluster down again\r\n", s.requestBody(true));
    s.run({"fetch"});
    auto quiet = s.run({"process"});
    CHECK(s.scalar("SELECT COUNT(*) FROM incidents") == 2);
    CHECK((quiet.out + quiet.err).find("do not vouch") == std::string::npos);
}
