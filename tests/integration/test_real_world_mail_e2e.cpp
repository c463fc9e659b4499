// Issue 10, end to end: mail as real clients write it (Outlook's windows-1258, a Mac's
// NFD, plain words, an HTML table, a forward, a reply asking for the balance, a mail
// over the size limit, a spam-flagged mail) sent by swaks through the real Postfix,
// fetched over IMAP, processed, delivered, and the answer read back over IMAP.
#include <catch2/catch.hpp>

#include <regex>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

const std::vector<std::string> kUsers = {"support", "alice", "bob", "erin", "frank", "mallory"};

using Answer = smtest::ReceivedMail;

class RealWorldDesk : public smtest::MailServers {
public:
    smtest::TempDir dir;
    std::string conf;
    std::unique_ptr<sm::store::Database> db;
    std::string goldAccess, goldContract, silverAccess, silverContract;

    explicit RealWorldDesk(const std::string& extraConfig = "") {
        reset(kUsers);
        // Authentication policy is not under test here (issue 11 owns it).
        conf = smtpConfig(dir, supportInbound() + "process.require_authentication = false\n" + extraConfig);
        run({"import-partners", smtest::writeSamplePartners(dir)});
        std::string renewals = dir.file("renewals.csv");
        smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + smtest::today() +
                                        "\n5102233,silver," + smtest::today() + "\n");
        run({"import-renewals", renewals});
        run({"activate"});
        db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
        db->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(goldAccess),
            into(goldContract), now;
        db->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'silver'", into(silverAccess),
            into(silverContract), now;
        db->session() << "UPDATE outbox SET state = 'sent' WHERE kind = 'id_mail'", now;  // not under test here
    }

    smtest::RunResult run(const std::vector<std::string>& args) {
        std::vector<std::string> a = {"--config", conf};
        a.insert(a.end(), args.begin(), args.end());
        auto r = smtest::runSupportmail(a, authSmtpAndImap());
        INFO(args[0] << ": " << r.out << r.err);
        REQUIRE(r.exitCode == 0);
        return r;
    }

    void send(const std::string& from, const std::string& raw, std::size_t expectInSupport) {
        sendAndWait(dir, from, raw, expectInSupport);
    }

    void cycle() {
        run({"fetch"});
        run({"process"});
        run({"deliver"});
    }

    /// The count-th mail in the user's mailbox, checked by the independent validator.
    Answer answer(const std::string& user, std::size_t count) { return lastReceived(dir, user, count); }

    int scalar(const std::string& sql) {
        int n = 0;
        db->session() << sql, into(n), now;
        return n;
    }
};

/// A mail with a Message-ID we can look for in the answer's threading headers.
std::string mail(const std::string& from, const std::string& subject, const std::string& messageId,
                 const std::string& headersAndBody) {
    return "From: " + from + "\r\nTo: support@example.test\r\nSubject: " + subject +
           "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0700\r\nMessage-ID: " + messageId + "\r\nMIME-Version: 1.0\r\n" +
           headersAndBody;
}

std::string uniqueId(const std::string& tag) {
    static int n = 0;
    return "<" + tag + "." + std::to_string(++n) + "." + std::to_string(Poco::Timestamp().epochMicroseconds()) +
           "@partner.example>";
}

/// The answer is threaded to the mail it answers.
void requireThreaded(const Answer& a, const std::string& messageId) {
    CHECK(a.raw.find("In-Reply-To: " + messageId) != std::string::npos);
    std::smatch m;
    REQUIRE(std::regex_search(a.raw, m, std::regex("References:([^\r\n]*(\r\n[ \t][^\r\n]*)*)")));
    CHECK(m.str(1).find(messageId) != std::string::npos);
}

/// "0230242323" as a person might type it: "0230 242 323".
std::string spaced(const std::string& id) { return id.substr(0, 4) + " " + id.substr(4, 3) + " " + id.substr(7); }

}  // namespace

TEST_CASE("real-world requests over real SMTP and IMAP are read and answered", "[integration][realworld]") {
    RealWorldDesk d;

    SECTION("Outlook's windows-1258 quoted-printable (tone marks as combining characters) opens a case") {
        // "ID truy cập", "ID hợp đồng", "Sản phẩm", "Mức độ nghiêm trọng", "Mô tả" as windows-1258
        // writes them: base letter, then the tone mark (0xF2 dot below, 0xCC grave, 0xD2 hook, 0xEC acute).
        std::string body = "Xin ch=E0o,\r\n\r\nID truy c=E2=F2p: " + d.silverAccess + "\r\nID h=F5=F2p =F0=F4=CCng: " +
                           d.silverContract + "\r\nSa=D2n ph=E2=D2m: SQL Server 2022\r\nM=FD=ECc =F0=F4=F2 nghi=EAm tro=F2ng: B\r\n"
                           "M=F4 ta=D2: C=F5 s=F5=D2 d=FE=CC li=EA=F2u ch=E2=F2m.\r\n";
        std::string id = uniqueId("cp1258");
        d.send("erin@example.test",
               mail("erin@example.test", "=?windows-1258?Q?Y=EAu_c=E2=CCu_h=F4=CC_tro=F5=F2?=", id,
                    "Content-Type: text/plain; charset=windows-1258\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
                        body),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 1);
        auto a = d.answer("erin", 1);
        CHECK(a.text.find("SR-") != std::string::npos);
        CHECK(a.text.find("Kính gửi") != std::string::npos);  // erin's language on record
        requireThreaded(a, id);
    }
    SECTION("text typed on a Mac (NFD UTF-8), labels without diacritics and in capitals, a spaced ID") {
        // NFD: "ID truy cập" with U+0323 U+0302 apart; "MA HOP DONG" without diacritics.
        std::string body = "ID truy ca\xCC\xA3\xCC\x82p: " + spaced(d.silverAccess) + "\r\nMA HOP DONG: " +
                           d.silverContract + "\r\nSan pham: SQL Server 2022\r\nMu\xCC\x9B\xCC\x81\x63 \xC4\x91o\xCC\xA3\xCC\x82: C\r\n";
        std::string id = uniqueId("nfd");
        d.send("erin@example.test",
               mail("erin@example.test", "Yeu cau ho tro", id,
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE severity = 'C'") == 1);
        auto a = d.answer("erin", 1);
        CHECK(a.text.find("SR-") != std::string::npos);
        requireThreaded(a, id);
    }
    SECTION("a request in plain words gets the request template, nothing debited") {
        std::string id = uniqueId("words");
        d.send("alice@example.test",
               mail("Alice Schmidt <alice@example.test>", "VM down", id,
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nOur Azure VM is down since this morning, please "
                    "help.\r\nOur access id is 230 242 323.\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents") == 0);
        CHECK(d.scalar("SELECT COUNT(*) FROM inbound WHERE classification = 'no_request'") == 1);
        auto a = d.answer("alice", 1);
        CHECK(a.subject.find("could not find a support request") != std::string::npos);
        CHECK(a.text.find("Access ID: <the 10 digits") != std::string::npos);  // the template
        CHECK(a.text.find("an Access ID with 9 digits") != std::string::npos);  // what was found
        requireThreaded(a, id);
    }
    SECTION("a stranger writing Vietnamese in plain words is answered in Vietnamese") {
        std::string id = uniqueId("vi-words");
        d.send("mallory@example.test",
               mail("mallory@example.test", "=?UTF-8?Q?H=E1=BB=97_tr=E1=BB=A3?=", id,
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    "M\xC3\xA1y ch\xE1\xBB\xA7 c\xE1\xBB\xA7\x61 ch\xC3\xBAng t\xC3\xB4i kh\xC3\xB4ng ch\xE1\xBA\xA1y, "
                    "xin gi\xC3\xBAp \xC4\x91\xE1\xBB\xA1.\r\n"),
               1);
        d.cycle();
        auto a = d.answer("mallory", 1);
        CHECK(a.subject.find("Chúng tôi không tìm thấy yêu cầu hỗ trợ") != std::string::npos);
        CHECK(a.text.find("ID truy cập: <10 chữ số") != std::string::npos);
    }
    SECTION("IDs in an HTML table (multipart/alternative) open a case") {
        std::string html = "<html><body><p>Hello,</p><table><tr><td>Access ID</td><td>" + spaced(d.goldAccess) +
                           "</td></tr><tr><td><b>Contract ID</b></td><td>" + d.goldContract +
                           "</td></tr><tr><td>Product</td><td>Windows Server 2022</td></tr>"
                           "<tr><td>Severity</td><td>B</td></tr></table></body></html>";
        std::string id = uniqueId("table");
        d.send("alice@example.test",
               mail("alice@example.test", "Server problem", id,
                    "Content-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n--ALT\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nAccess ID\t" + spaced(d.goldAccess) +
                        "\r\nContract ID\t" + d.goldContract + "\r\n\r\n--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
                        html + "\r\n--ALT--\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE product = 'Windows Server' AND severity = 'B'") == 1);
        auto a = d.answer("alice", 1);
        CHECK(a.text.find("SR-") != std::string::npos);
        requireThreaded(a, id);
    }
    SECTION("a request forwarded by a contact as an attached message: the contact is the requester") {
        std::string inner = "From: Customer <it@customer.example>\r\nTo: alice@example.test\r\nSubject: Broken cluster\r\n"
                            "Date: Wed, 25 Nov 2026 09:00:00 +0000\r\nMessage-ID: <inner.1@customer.example>\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n\r\nAccess ID: " + d.goldAccess +
                            "\r\nContract ID: " + d.goldContract +
                            "\r\nProduct: SQL Server 2019\r\nSeverity: C\r\nDescription: the cluster is broken.\r\n";
        std::string id = uniqueId("fwd");
        d.send("alice@example.test",
               mail("alice@example.test", "Fwd: Broken cluster", id,
                    "Content-Type: multipart/mixed; boundary=\"FWD\"\r\n\r\n--FWD\r\nContent-Type: text/plain\r\n\r\n"
                    "Please handle the attached request.\r\n--FWD\r\nContent-Type: message/rfc822\r\n"
                    "Content-Disposition: attachment\r\n\r\n" + inner + "\r\n--FWD--\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE requester_email = 'alice@example.test' AND "
                       "product = 'SQL Server'") == 1);
        auto a = d.answer("alice", 1);
        CHECK(a.text.find("SR-") != std::string::npos);
        requireThreaded(a, id);
    }
    SECTION("an inline forward (Outlook's quoted header block) opens a case") {
        std::string id = uniqueId("inline");
        d.send("alice@example.test",
               mail("alice@example.test", "FW: Broken cluster", id,
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nPlease handle.\r\n\r\n"
                    "-----Original Message-----\r\nFrom: Customer <it@customer.example>\r\nSent: Wednesday\r\n"
                    "Subject: Broken cluster\r\n\r\n> Access ID: " + d.goldAccess + "\r\n> Contract ID: " +
                        d.goldContract + "\r\n> Product: SQL Server 2019\r\n> Severity: C\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM incidents WHERE requester_email = 'alice@example.test'") == 1);
        CHECK(d.answer("alice", 1).text.find("SR-") != std::string::npos);
    }
    SECTION("a reply to none of our cases asking for the balance gets the balance") {
        std::string id = uniqueId("balance");
        d.send("alice@example.test",
               mail("alice@example.test", "Re: Your support IDs", id,
                    "In-Reply-To: <something.else@elsewhere.example>\r\nReferences: <something.else@elsewhere.example>\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks! How many incidents do we have left?\r\n\r\n"
                    "> earlier text\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:benefits'") == 1);
        auto a = d.answer("alice", 1);
        CHECK(a.text.find("20") != std::string::npos);  // the gold contract's incidents left
        requireThreaded(a, id);
    }
    SECTION("\"còn bao nhiêu sự cố\" without diacritics is a balance query too") {
        std::string id = uniqueId("balance-vi");
        d.send("erin@example.test",
               mail("erin@example.test", "Hoi", id,
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nChung toi con bao nhieu su co?\r\n"),
               1);
        d.cycle();
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'reply:benefits'") == 1);
        requireThreaded(d.answer("erin", 1), id);
    }
    SECTION("mail our MX flagged as spam is not answered, logged and counted in status") {
        d.send("mallory@example.test",
               mail("mallory@example.test", "Cheap watches", uniqueId("spam"),
                    "X-Spam-Flag: YES\r\nContent-Type: text/plain\r\n\r\nBuy now.\r\n"),
               1);
        d.send("mallory@example.test",
               mail("mallory@example.test", "Hello", uniqueId("dmarc"),
                    "Authentication-Results: mx.example.test; dmarc=fail header.from=example.test\r\n"
                    "Content-Type: text/plain\r\n\r\nHello.\r\n"),
               2);
        d.run({"fetch"});
        auto p = d.run({"process"});
        d.run({"deliver"});
        CHECK(d.scalar("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply%'") == 0);
        CHECK((p.out + p.err).find("not answered: spam") != std::string::npos);
        auto s = d.run({"status"});
        CHECK(s.out.find("1 dmarc_fail") != std::string::npos);
        CHECK(s.out.find("1 spam") != std::string::npos);
        CHECK(smtest::fetchAll(d.env, "mallory", "mallory-pw").empty());
    }
}

TEST_CASE("the answer to a mail over the size limit is threaded", "[integration][realworld]") {
    RealWorldDesk d("process.max_message_bytes = 2048\n");
    std::string big(6000, 'x');
    for (std::size_t i = 70; i < big.size(); i += 72) big[i] = '\n';
    std::string id = uniqueId("large");
    d.send("alice@example.test", mail("alice@example.test", "Huge logs", id, "Content-Type: text/plain\r\n\r\n" + big), 1);
    d.cycle();
    CHECK(d.scalar("SELECT COUNT(*) FROM inbound WHERE state = 'rejected'") == 1);
    auto a = d.answer("alice", 1);
    CHECK(a.subject.find("Huge logs") != std::string::npos);
    requireThreaded(a, id);
}

TEST_CASE("the confirmation shows the due time in the contact's zone beside the centre's", "[integration][realworld]") {
    RealWorldDesk d("calendar.time_zone = Europe/Berlin\ncountries.VN.time_zone = Asia/Ho_Chi_Minh\n");
    std::string id = uniqueId("zone");
    d.send("erin@example.test",
           mail("erin@example.test", "Yeu cau", id,
                "Content-Type: text/plain; charset=utf-8\r\n\r\nAccess ID: " + d.silverAccess + "\r\nContract ID: " +
                    d.silverContract + "\r\nProduct: SQL Server 2022\r\nSeverity: B\r\n"),
           1);
    d.cycle();
    auto a = d.answer("erin", 1);
    CHECK(a.text.find("(Europe/Berlin, UTC+0") != std::string::npos);
    CHECK(a.text.find("Giờ của Quý khách") != std::string::npos);
    CHECK(a.text.find("(Asia/Ho_Chi_Minh, UTC+07:00)") != std::string::npos);
    requireThreaded(a, id);
}
