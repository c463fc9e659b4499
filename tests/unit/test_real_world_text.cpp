// Issue 10, units: NFC and folding (utf8proc), typed IDs, HTML tables read as
// "label: value", legacy DSN addresses, the content classes of plain wordings.
#include <catch2/catch.hpp>

#include "mail/classify.h"
#include "mail/html_text.h"
#include "mail/mime_parser.h"
#include "mail/request_fields.h"
#include "mail/unicode_text.h"

using namespace sm::mail;

TEST_CASE("NFC composes the tone marks Outlook and a Mac write apart", "[unicode]") {
    const std::string nfd = "ID truy ca\xCC\xA3\xCC\x82p";  // a, U+0323, U+0302
    CHECK(nfd != "ID truy cập");
    CHECK(nfc(nfd) == "ID truy cập");
    CHECK(nfc("plain ascii") == "plain ascii");
    CHECK(nfc("\xFF\xFE broken") == "\xFF\xFE broken");  // invalid input unchanged
}

TEST_CASE("labels match in any case and without Vietnamese diacritics", "[unicode]") {
    CHECK(foldForMatch("MA HOP DONG") == foldForMatch("Mã hợp đồng"));
    CHECK(foldForMatch("ID truy cap") == foldForMatch("ID truy cập"));
    CHECK(foldForMatch("Đ") == "d");
    CHECK(foldForMatch("ID truy cập") != foldForMatch("ID hợp đồng"));
    auto f = extractRequestFields("ID TRUY CAP: 0230242323\nma hop dong: C-7KQ2M9XH4T\nMUC DO: b\n");
    CHECK(f["access_id"] == "0230242323");
    CHECK(f["contract_id"] == "C-7KQ2M9XH4T");
    CHECK(f["severity"] == "b");
}

TEST_CASE("typed Access IDs: spaces, dashes, dots, full-width digits", "[unicode]") {
    CHECK(normalizeTypedDigits("0230 242 323") == "0230242323");
    CHECK(normalizeTypedDigits("0230-242-323") == "0230242323");
    CHECK(normalizeTypedDigits("0230.242.323") == "0230242323");
    CHECK(normalizeTypedDigits("０２３０２４２３２３") == "0230242323");
    CHECK(normalizeTypedDigits("0230\xC2\xA0" "242323") == "0230242323");
    CHECK(normalizeTypedDigits("02302x2323") == "02302x2323");  // not an ID: left as typed
}

TEST_CASE("an HTML table row reads as label: value", "[html]") {
    std::string t = htmlToText("<table><tr><td>Access ID</td><td>0230242323</td></tr>"
                               "<tr><th>Product:</th><td>SQL Server</td><td>2019</td></tr></table>");
    CHECK(t.rfind("Access ID: 0230242323\n", 0) == 0);
    CHECK(t.find("\nProduct: SQL Server 2019") != std::string::npos);  // no second colon after "Product:"
    auto f = extractRequestFields(t);
    CHECK(f["access_id"] == "0230242323");
    CHECK(f["product"] == "SQL Server 2019");
}

TEST_CASE("legacy DSN recipients: Exchange smtp=, X.400 with RFC 822, a stray quote", "[bounce]") {
    auto first = [](const std::string& finalRecipient) {
        std::string raw = "From: MAILER-DAEMON@mx.example\nTo: s@example.test\nSubject: Undeliverable\n"
                          "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                          "--B\nContent-Type: text/plain\n\nfailed\n--B\nContent-Type: message/delivery-status\n\n"
                          "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: " + finalRecipient +
                          "\nAction: failed\nStatus: 5.1.1\n--B--\n";
        BounceInfo b;
        REQUIRE(classifyHygiene(parseMail(raw), &b) == Classification::Bounce);
        return b.recipients.empty() ? std::string() : b.recipients.front();
    };
    CHECK(first("rfc822;smtp=kijitora@example.jp") == "kijitora@example.jp");
    CHECK(first("RFC822; <SMTP:kijitora@example.jp>") == "kijitora@example.jp");
    CHECK(first("x400; /C=JP/ADMD=x/RFC-822=kijitora(a)example.jp/") == "kijitora@example.jp");
    CHECK(first("rfc822; 'kijitora@example.jp") == "kijitora@example.jp");
}

TEST_CASE("plain wordings: balance, resend, in English and Vietnamese, folded", "[classify]") {
    auto cls = [](const std::string& body) {
        return classifyContent(parseMail("From: a@b.example\nSubject: question\n\n" + body));
    };
    CHECK(cls("How many incidents do we have left?") == Classification::Benefits);
    CHECK(cls("Chúng tôi còn bao nhiêu sự cố?") == Classification::Benefits);
    CHECK(cls("chung toi con bao nhieu su co") == Classification::Benefits);
    CHECK(cls("Vui lòng gửi lại mã") == Classification::Resend);
    CHECK(cls("Our VM is down, please help") == Classification::NoRequest);
    CHECK(cls("Thanks\n> how many incidents do we have left") == Classification::NoRequest);  // quoted only
}
