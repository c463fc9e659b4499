// Focused tests of the inbound mail parser and its decoders.
#include <catch2/catch.hpp>

#include "mail/charset.h"
#include "domain/requests.h"
#include "mail/classify.h"
#include "mail/html_text.h"
#include "mail/inspect.h"
#include "mail/mime_parser.h"
#include "mail/request_fields.h"
#include "mail/rfc2047.h"
#include "mail/rfc2231.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <chrono>
#include <fstream>
#include <random>
#include <regex>

using namespace sm::mail;

namespace {

double millis(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("RFC 2047: adjacent encoded words join without the space between them", "[parser]") {
    CHECK(decodeRfc2047("=?UTF-8?Q?Hello_?= =?UTF-8?Q?World?=") == "Hello World");
    CHECK(decodeRfc2047("=?UTF-8?B?SGVs?=\r\n =?UTF-8?B?bG8=?=") == "Hello");
    // Plain text keeps its spaces around encoded words.
    CHECK(decodeRfc2047("Re: =?ISO-8859-1?Q?Gr=FC=DFe?= aus Berlin") == "Re: Grüße aus Berlin");
    // B and Q, lower case markers.
    CHECK(decodeRfc2047("=?utf-8?b?w6TDtsO8?=") == "äöü");
    CHECK(decodeRfc2047("=?utf-8?q?=C3=A4?=") == "ä");
}

TEST_CASE("RFC 2047: a multibyte character split across two words", "[parser]") {
    // "ệ" is E1 BB 87: split after the first byte, base64 and Q.
    CHECK(decodeRfc2047("=?UTF-8?B?4Q==?= =?UTF-8?B?u4c=?=") == "\xE1\xBB\x87");
    CHECK(decodeRfc2047("=?UTF-8?Q?Vi=E1=BB?= =?UTF-8?Q?=87t?=") == "Vi\xE1\xBB\x87t");
    // Different charsets are decoded separately.
    CHECK(decodeRfc2047("=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?=") == "éé");
}

TEST_CASE("RFC 2047: unknown charset keeps the word raw with a defect", "[parser]") {
    std::vector<std::string> defects;
    CHECK(decodeRfc2047("=?x-klingon?Q?abc?= ok", &defects) == "=?x-klingon?Q?abc?= ok");
    REQUIRE(defects.size() == 1);
    CHECK(defects[0].find("x-klingon") != std::string::npos);
}

TEST_CASE("charsets to UTF-8", "[parser]") {
    std::string out;
    CHECK(convertToUtf8("\xE9t\xE9", "ISO-8859-1", out));
    CHECK(out == "été");
    CHECK(convertToUtf8("\x80", "windows-1252", out));
    CHECK(out == "€");
    CHECK(convertToUtf8("\xF0\xD2\xC9\xD7\xC5\xD4", "KOI8-R", out));
    CHECK(out == "Привет");
    CHECK(convertToUtf8("\xC4\xE3\xBA\xC3", "GB2312", out));
    CHECK(out == "你好");
    CHECK(convertToUtf8("\x1B$B$3$s$K$A$O\x1B(B", "ISO-2022-JP", out));
    CHECK(out == "こんにちは");
    CHECK(convertToUtf8("Fr+APY-sche", "UTF-7", out));
    CHECK(out == "Frösche");
    CHECK(convertToUtf8("\xA4\xA4\xA4\xE5", "Big5", out));
    CHECK(out == "中文");
    CHECK(convertToUtf8("\x82\xB1\x82\xF1", "Shift_JIS", out));
    CHECK(out == "こん");
    CHECK(convertToUtf8("\xEA\xEE\xF2", "windows-1251", out));
    CHECK(out == "кот");
    // Undeclared 8-bit: valid UTF-8 stays, anything else is windows-1252.
    CHECK(undeclaredToUtf8("Vi\xE1\xBB\x87t") == "Vi\xE1\xBB\x87t");
    CHECK(undeclaredToUtf8("caf\xE9") == "café");
    CHECK_FALSE(isKnownCharset("x-no-such-charset"));
    CHECK(repairUtf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
}

TEST_CASE("undeclared 8-bit: dense GB2312 pairs are GB18030, anything else windows-1252", "[parser]") {
    CHECK(looksLikeGb2312("\xC4\xE3\xBA\xC3"));
    CHECK(undeclaredToUtf8("\xC4\xE3\xBA\xC3") == "你好");
    CHECK(undeclaredToUtf8("Re: \xD7\xAA\xB7\xA2\xA3\xBA test") == "Re: 转发： test");
    // Western text: an accented letter beside ASCII, or a lead byte outside GB2312.
    CHECK(undeclaredToUtf8("caf\xE9 cr\xE8me") == "café crème");
    CHECK(undeclaredToUtf8("Gr\xFC\xDF" "e") == "Grüße");
    // One pair is not enough ("ÄÖ").
    CHECK(undeclaredToUtf8("\xC4\xD6") == "ÄÖ");
    // KOI8-R / windows-1251 words pair evenly but stay in the C0-FF letter block.
    CHECK_FALSE(looksLikeGb2312("\xD4\xC5\xD3\xD4 \xD4\xC5\xD3\xD4"));
    CHECK(undeclaredToUtf8("\xF2\xE5\xF1\xF2") == "òåñò");
    // Mixed UTF-8 and Latin-1 (an unknown label): each keeps its characters.
    CHECK(undeclaredToUtf8("UTF-8 \xC3\xA4 \xE5\xB7\xAE, Latin-1 \xE4\xF6") == "UTF-8 ä 差, Latin-1 äö");
    std::string mixed;
    CHECK_FALSE(convertToUtf8("\xC3\xA4 / \xE4", "iso-gb2312", mixed));
    CHECK(mixed == "ä / ä");
    // Valid UTF-8 is never re-read.
    CHECK(undeclaredToUtf8("\xE4\xBD\xA0\xE5\xA5\xBD") == "你好");
    // Raw header bytes beside an ISO-8859-1 body: the Latin label is no evidence.
    CHECK(decodeRfc2047("\xCE\xE4\xC0\xBC\xB3\xC9", nullptr, "ISO-8859-1") == "武兰成");
    CHECK(decodeRfc2047("M\xFCller", nullptr, "ISO-8859-1") == "Müller");
    // A whole mail: raw GB2312 Subject / From name, body without Content-Type.
    ParsedMail m = parseMail(
        "From: \"\xCE\xE4\xC0\xBC\xB3\xC9\" <wu@example.com>\r\n"
        "Subject: \xD7\xAA\xB7\xA2\xA3\xBA\xD5\xFB\xCC\xE5\r\n"
        "\r\n"
        "\xBB\xFA\xB7\xBF\xBB\xB7\xBE\xB3\r\nplain ASCII after it\r\n");
    CHECK(m.from.name == "武兰成");
    CHECK(m.subject == "转发：整体");
    CHECK(m.text.rfind("机房环境\nplain ASCII after it", 0) == 0);
}

TEST_CASE("ISO-2022-JP with the NEC / IBM extensions (CP50221)", "[parser]") {
    std::string out;
    // Row 13 of the NEC extensions: circled digit one (2D21), then 1 in full width.
    CHECK(convertToUtf8("\x1B$B-!#1\x1B(B", "ISO-2022-JP", out));
    CHECK(out == "①１");
    // Half-width katakana and ASCII around it.
    CHECK(convertToUtf8("a\x1B$B-\"\x1B(I1\x1B(Bc", "iso-2022-jp", out));
    CHECK(out == "a②ｱc");
    // Plain ISO-2022-JP keeps the JIS mapping (WAVE DASH, not FULLWIDTH TILDE).
    CHECK(convertToUtf8("\x1B$B!A\x1B(B", "ISO-2022-JP", out));
    CHECK(out == "\xE3\x80\x9C");
    // In an encoded word as well.
    CHECK(decodeRfc2047("=?ISO-2022-JP?B?GyRCLSEbKEI=?=") == "①");
}

TEST_CASE("RFC 2231 parameters, charsets and continuations", "[parser]") {
    ParamHeader h = parseParamHeader(
        "attachment; filename*0*=UTF-8''B%C3%A1o%20c%C3%A1o; filename*1*=%20th%C3%A1ng; filename*2=\" 5.pdf\"");
    CHECK(h.value == "attachment");
    CHECK(h.param("filename") == "Báo cáo tháng 5.pdf");
    ParamHeader q = parseParamHeader("text/plain; charset=\"ISO-8859-1\"; name=\"=?UTF-8?B?w6Q=?=.txt\"");
    CHECK(q.value == "text/plain");
    CHECK(q.param("charset") == "ISO-8859-1");
    CHECK(q.param("name") == "ä.txt");
    ParamHeader single = parseParamHeader("attachment; filename*=iso-8859-1'en'%E9t%E9.txt");
    CHECK(single.param("filename") == "été.txt");
    // Out of order continuations.
    ParamHeader ooo = parseParamHeader("attachment; name*1=\"def\"; name*0=\"abc\"");
    CHECK(ooo.param("name") == "abcdef");
}

TEST_CASE("HTML to text", "[parser]") {
    std::string t = htmlToText(
        "<html><head><title>x</title><style>p{color:red}</style></head><body><p>Hello&nbsp;<b>world</b></p>"
        "<script>alert(1)</script><div>Line&#32;two &amp; &#x1F600; &eacute;</div><ul><li>one</li></ul></body></html>");
    CHECK(t == "Hello world\n\nLine two & \xF0\x9F\x98\x80 é\n\n- one");
    CHECK(htmlToText("a<br>b<br/>c") == "a\nb\nc");
}

TEST_CASE("parse a simple mail with encoded headers", "[parser]") {
    std::string raw =
        "From: =?UTF-8?Q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@example.vn>\r\n"
        "To: \"Support\" <support@example.com>, b@example.com (Bob)\r\n"
        "Subject: =?UTF-8?B?WcOqdSBj4bqndSBo4buXIHRy4bujIA==?=\r\n =?UTF-8?B?a+G7uSB0aHXhuq10?=\r\n"
        "Message-ID: <m1@example.vn>\r\n"
        "In-Reply-To: <x@y>\r\n"
        "References: <a@b> <x@y>\r\n"
        "Date: Mon, 2 Mar 2026 10:00:00 +0700\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Xin ch=C3=A0o,=\r\n"
        " b=E1=BA=A1n\r\n";
    ParsedMail m = parseMail(raw);
    CHECK(m.from.name == "Nguyễn Văn A");
    CHECK(m.from.email == "a@example.vn");
    REQUIRE(m.to.size() == 2);
    CHECK(m.to[0].name == "Support");
    CHECK(m.to[1].name == "Bob");
    CHECK(m.to[1].email == "b@example.com");
    CHECK(m.subject == "Yêu cầu hỗ trợ kỹ thuật");
    CHECK(m.messageId == "<m1@example.vn>");
    CHECK(m.inReplyTo == "<x@y>");
    CHECK(m.references == std::vector<std::string>{"<a@b>", "<x@y>"});
    CHECK(m.text == "Xin chào, bạn\n");
    CHECK(m.defects.empty());
}

TEST_CASE("bare CR and bare LF line endings parse", "[parser]") {
    std::string lf = "From: a@b.c\nSubject: hi\nContent-Type: multipart/mixed; boundary=X\n\n--X\n"
                     "Content-Type: text/plain\n\nbody text\n--X\nContent-Type: application/pdf; name=a.pdf\n"
                     "Content-Transfer-Encoding: base64\n\nJVBERi0=\n--X--\n";
    std::string cr = lf;
    for (auto& c : cr)
        if (c == '\n') c = '\r';
    for (const std::string* raw : {&lf, &cr}) {
        ParsedMail m = parseMail(*raw);
        CHECK(m.subject == "hi");
        CHECK(m.text == "body text");
        REQUIRE(m.attachments.size() == 1);
        CHECK(m.attachments[0].name == "a.pdf");
        CHECK(m.attachments[0].size == 5);
    }
    ParsedMail m = parseMail(cr);
    CHECK(std::find(m.defects.begin(), m.defects.end(), "bare CR line endings") != m.defects.end());
}

TEST_CASE("missing boundaries degrade to text with a defect", "[parser]") {
    // No boundary parameter at all.
    ParsedMail a = parseMail("From: a@b.c\nContent-Type: multipart/mixed\n\nJust some text\n-- \nsig\n");
    CHECK(a.text.find("Just some text") != std::string::npos);
    CHECK_FALSE(a.defects.empty());
    // Boundary declared, never used.
    ParsedMail b = parseMail("From: a@b.c\nContent-Type: multipart/mixed; boundary=nope\n\nHello there\n");
    CHECK(b.text.find("Hello there") != std::string::npos);
    CHECK_FALSE(b.defects.empty());
    // No closing boundary.
    ParsedMail c = parseMail(
        "From: a@b.c\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nopen end\n");
    CHECK(c.text == "open end\n");
    CHECK(std::find(c.defects.begin(), c.defects.end(), "missing closing boundary") != c.defects.end());
}

TEST_CASE("1,000-deep nesting is cut at the limit, without crash", "[parser]") {
    std::string raw = "From: a@b.c\nSubject: deep\n";
    for (int i = 0; i < 1000; ++i)
        raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
    raw += "Content-Type: text/plain\n\ninnermost\n";
    for (int i = 999; i >= 0; --i) raw += "--b" + std::to_string(i) + "--\n";
    auto t0 = std::chrono::steady_clock::now();
    ParsedMail m = parseMail(raw);
    CHECK(millis(t0) < 2000);
    CHECK(m.subject == "deep");
    bool cut = false;
    for (const auto& d : m.defects) cut = cut || d.find("nesting deeper than 50") != std::string::npos;
    CHECK(cut);
    // With rejectHostile, the same mail is quarantined with its reason.
    ParseLimits strict;
    strict.rejectHostile = true;
    CHECK_THROWS_AS(parseMail(raw, strict), MailRejected);
    // 100,000 levels (mimetic alone overflows its stack there).
    std::string huge = "From: a@b.c\n";
    for (int i = 0; i < 100000; ++i) huge += "Content-Type: multipart/mixed; boundary=q\n\n--q\n";
    t0 = std::chrono::steady_clock::now();
    CHECK_NOTHROW(parseMail(huge));
    CHECK(millis(t0) < 5000);
}

TEST_CASE("enormous header line and many parts are bounded", "[parser]") {
    std::string raw = "From: a@b.c\nSubject: " + std::string(20u << 20, 'x') + "\nX-Other: y\n\nbody\n";
    auto t0 = std::chrono::steady_clock::now();
    ParsedMail m = parseMail(raw);
    CHECK(millis(t0) < 3000);
    CHECK(m.subject.size() <= (64u << 10));
    CHECK(m.text == "body\n");
    CHECK(m.header("X-Other") != nullptr);
    std::string parts = "From: a@b.c\nContent-Type: multipart/mixed; boundary=p\n\n";
    for (int i = 0; i < 300000; ++i) parts += "--p\n\n";
    t0 = std::chrono::steady_clock::now();
    ParsedMail many = parseMail(parts);
    CHECK(millis(t0) < 3000);
    bool cut = false;
    for (const auto& d : many.defects) cut = cut || d.find("more than 5000 MIME parts") != std::string::npos;
    CHECK(cut);
    ParseLimits small;
    small.maxSize = 1000;
    CHECK_THROWS_AS(parseMail(raw, small), MailRejected);
}

TEST_CASE("HTML-only mail becomes text, alternatives prefer text/plain", "[parser]") {
    ParsedMail h = parseMail(
        "From: a@b.c\nContent-Type: text/html; charset=iso-8859-1\n\n<p>Gr\xFC\xDF" "e</p><p>zwei</p>");
    CHECK(h.text == "Grüße\n\nzwei");
    CHECK(h.textFromHtml);
    ParsedMail alt = parseMail(
        "From: a@b.c\nContent-Type: multipart/alternative; boundary=A\n\n--A\nContent-Type: text/plain\n\nplain\n"
        "--A\nContent-Type: text/html\n\n<p>html</p>\n--A--\n");
    CHECK(alt.text == "plain");
    CHECK(alt.html == "<p>html</p>");
    CHECK(alt.attachments.empty());
}

TEST_CASE("attached messages do not give the main text, attachment names are decoded", "[parser]") {
    ParsedMail m = parseMail(
        "From: a@b.c\nContent-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: text/plain\n\nmine\n"
        "--M\nContent-Type: message/rfc822\n\nFrom: x@y.z\nSubject: old\n\ntheirs\n"
        "--M\nContent-Type: application/octet-stream; name=\"=?UTF-8?B?w6Rw?=.bin\"\n"
        "Content-Disposition: attachment; filename*=UTF-8''%C3%A4.bin\nContent-Transfer-Encoding: base64\n\n"
        "AAEC\n--M--\n");
    CHECK(m.text == "mine");
    REQUIRE(m.attachments.size() == 2);
    CHECK(m.attachments[0].contentType == "message/rfc822");
    CHECK(m.attachments[0].name == "old.eml");
    CHECK(m.attachments[1].name == "ä.bin");
    CHECK(m.attachments[1].size == 3);
}

TEST_CASE("looksLikeMail tells mail from other bytes", "[parser]") {
    CHECK(looksLikeMail("From: a@b.c\n\nhi"));
    CHECK(looksLikeMail("From someone Mon Jan 1\nSubject: x\n\n"));
    CHECK_FALSE(looksLikeMail(std::string("\x89PNG\r\n\x1a\n\0\0\0", 11)));
    CHECK_FALSE(looksLikeMail("just some words\nand more\n"));
    CHECK_FALSE(looksLikeMail(""));
}

TEST_CASE("request fields in English and Vietnamese", "[parser]") {
    RequestFields en = extractRequestFields(
        "Hello,\n\n* **Access ID:** 0230242323\n- Contract ID: 7788-1122\n\tProduct :\tSQL Server\n"
        "Usage type: IT Pro\nProblem type: Performance\nCategory: Setup\nSeverity: B\n"
        "Description: The server is slow.\nIt started yesterday.\n\nThanks\n");
    CHECK(en["access_id"] == "0230242323");
    CHECK(en["contract_id"] == "7788-1122");
    CHECK(en["product"] == "SQL Server");
    CHECK(en["usage_type"] == "IT Pro");
    CHECK(en["problem_type"] == "Performance");
    CHECK(en["category"] == "Setup");
    CHECK(en["severity"] == "B");
    CHECK(en["description"] == "The server is slow.\nIt started yesterday.\n\nThanks");
    RequestFields vi = extractRequestFields(
        "MÃ TRUY CẬP\xEF\xBC\x9A 0037123456\nMã hợp đồng: HD-01\nSản phẩm: Exchange\nMức độ nghiêm trọng: A\n"
        "Mô tả: Không gửi được thư\n");
    CHECK(vi["access_id"] == "0037123456");
    CHECK(vi["contract_id"] == "HD-01");
    CHECK(vi["product"] == "Exchange");
    CHECK(vi["severity"] == "A");
    CHECK(vi["description"] == "Không gửi được thư");
}

TEST_CASE("Vietnamese HTML-only request: fields, classification, inspect JSON", "[parser]") {
    std::string html =
        "<html><body><table><tr><td><b>ID truy c&#7853;p:</b></td><td>0012345678</td></tr>"
        "<tr><td>ID h\xE1\xBB\xA3p \xC4\x91\xE1\xBB\x93ng:</td><td>C-42</td></tr></table>"
        "<p>S\xE1\xBA\xA3n ph\xE1\xBA\xA9m: Dynamics</p><p>M\xE1\xBB\xA9" "c \xC4\x91\xE1\xBB\x99: C</p></body></html>";
    std::string raw = "From: =?UTF-8?Q?Tr=E1=BA=A7n_B?= <b@example.vn>\nTo: support@example.com\n"
                      "Subject: =?UTF-8?Q?Y=C3=AAu_c=E1=BA=A7u?=\nContent-Type: text/html; charset=UTF-8\n"
                      "Content-Transfer-Encoding: base64\n\n" +
                      [&] {
                          static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                          std::string out;
                          size_t i = 0;
                          for (; i + 2 < html.size(); i += 3) {
                              unsigned v = (unsigned char)html[i] << 16 | (unsigned char)html[i + 1] << 8 |
                                           (unsigned char)html[i + 2];
                              out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
                              if (out.size() % 77 == 76) out += '\n';
                          }
                          if (i + 1 == html.size()) {
                              unsigned v = (unsigned char)html[i] << 16;
                              out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
                          } else if (i + 2 == html.size()) {
                              unsigned v = (unsigned char)html[i] << 16 | (unsigned char)html[i + 1] << 8;
                              out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
                          }
                          return out + "\n";
                      }();
    ParsedMail m = parseMail(raw);
    RequestFields f = extractRequestFields(m.text);
    CHECK(f["access_id"] == "0012345678");
    CHECK(f["contract_id"] == "C-42");
    CHECK(f["product"] == "Dynamics");
    CHECK(f["severity"] == "C");
    CHECK(classifyHygiene(m) == Classification::Request);
    Poco::JSON::Parser parser;
    auto obj = parser.parse(inspectJson(m)).extract<Poco::JSON::Object::Ptr>();
    CHECK(obj->getObject("from")->getValue<std::string>("name") == "Trần B");
    CHECK(obj->getValue<std::string>("subject") == "Yêu cầu");
    CHECK(obj->getValue<std::string>("classification") == "request");
    CHECK(obj->isNull("bounce"));
    // Masked unless asked for (issue 11): inspect output lands in tickets and terminals.
    CHECK(obj->getObject("fields")->getValue<std::string>("access_id") == "0012xxxxxx");
    auto clear = parser.parse(inspectJson(m, true)).extract<Poco::JSON::Object::Ptr>();
    CHECK(clear->getObject("fields")->getValue<std::string>("access_id") == "0012345678");
    for (const char* key : {"from", "to", "subject", "date", "message_id", "in_reply_to", "references", "text",
                            "attachments", "classification", "bounce", "fields", "defects"})
        CHECK(obj->has(key));
}

TEST_CASE("classification: follow-up, resend, benefits, junk, auto-reply, bounce", "[parser]") {
    auto cls = [](const std::string& raw) { return classifyHygiene(parseMail(raw)); };
    CHECK(cls("From: a@b.c\nSubject: Re: [Case SR-2026-000123] slow\n\nmore info") == Classification::FollowUp);
    CHECK(cls("From: a@b.c\nSubject: help\n\nPlease resend our IDs") == Classification::Resend);
    CHECK(cls("From: a@b.c\nSubject: =?UTF-8?Q?g=E1=BB=ADi_l=E1=BA=A1i?=\n\nxin") == Classification::Resend);
    CHECK(cls("From: a@b.c\nSubject: question\n\nWhat is our balance?") == Classification::Benefits);
    CHECK(cls("From: a@b.c\nSubject: offer\n\nCheap watches") == Classification::NoRequest);
    CHECK(cls("From: a@b.c\nAuto-Submitted: auto-replied\nSubject: Out\n\naway") == Classification::AutoReply);
    CHECK(cls("From: a@b.c\nX-Auto-Response-Suppress: All\nSubject: Automatic reply: help\n\naway") ==
          Classification::AutoReply);
    // A person's request sent from Outlook with the header is still a request.
    CHECK(cls("From: a@b.c\nX-Auto-Response-Suppress: All\nSubject: help\n\nAccess ID: 0012345678\n"
              "Contract ID: 1234567890\nProduct: Windows Server\nSeverity: B\nDescription: slow") ==
          Classification::Request);
    CHECK(cls("From: a@b.c\nPrecedence: bulk\nSubject: news\n\nx") == Classification::Junk);
    CHECK(cls("From: a@b.c\nList-Id: <l.example.com>\nSubject: Access ID: 1\n\nx") == Classification::Junk);
    std::string dsn =
        "From: MAILER-DAEMON@mx.example.com\nSubject: Undelivered Mail\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=R\n\n--R\nContent-Type: text/plain\n\n"
        "failed\n--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; Gone@Example.com\nAction: failed\nStatus: 5.1.1\n--R--\n";
    BounceInfo b;
    CHECK(classifyHygiene(parseMail(dsn), &b) == Classification::Bounce);
    CHECK(b.recipients == std::vector<std::string>{"gone@example.com"});
    CHECK(b.permanent);
    CHECK(toString(Classification::FollowUp) == "follow_up");
    CHECK(toString(Classification::AutoReply) == "auto_reply");
}

TEST_CASE("list mail and case numbers: one rule each, as process and the classifier read them", "[parser]") {
    // The millionth case of a year has seven digits; it is still a follow-up, found whole.
    const auto m = parseMail("From: a@b.c\nSubject: Re: [SR-2026-1000001] slow\n\nmore");
    CHECK(classifyHygiene(m) == Classification::FollowUp);
    CHECK(sm::domain::findCaseNumber(m.subject) == std::optional<std::string>("SR-2026-1000001"));
    CHECK(isListMail(parseMail("From: a@b.c\nPrecedence:  Bulk \nSubject: x\n\nx")));
    CHECK(isListMail(parseMail("From: a@b.c\nList-Post: <mailto:l@example.com>\nSubject: x\n\nx")));
    CHECK(isListMail(parseMail("From: a@b.c\nList-Unsubscribe: <mailto:u@example.com>\nSubject: x\n\nx")));
    CHECK_FALSE(isListMail(parseMail("From: a@b.c\nPrecedence: first-class\nSubject: x\n\nx")));
    CHECK_FALSE(isListMail(parseMail("From: a@b.c\nSubject: Re: the list of our cases\n\nx")));
}

TEST_CASE("inspect JSON is valid for invalid UTF-8 input", "[parser]") {
    ParsedMail m = parseMail("From: \xFF\xFE <a@b.c>\nSubject: \xC3\x28\nContent-Type: text/plain; charset=utf-8\n\n\xC3\x28\x01\n");
    std::string json = inspectJson(m);
    CHECK(isValidUtf8(json));
    Poco::JSON::Parser parser;
    CHECK_NOTHROW(parser.parse(json));
}

TEST_CASE("an attachment's decoded size is what decoding would produce, for any bytes", "[parser][base64]") {
    // Every byte value, alone and between alphabet characters: the counting fast path
    // must classify each exactly as the decoder's table does.
    for (int b = 0; b < 256; ++b) {
        // Two characters decode to one byte, three to two: one byte more or less shows.
        const std::string s = "QU" + std::string(1, static_cast<char>(b));
        INFO("byte " << b);
        CHECK(sm::mail::base64DecodedSize(s) == sm::mail::decodeBase64(s).size());
    }
    // Long bodies with line breaks, padding in the middle (concatenated chunks) and
    // junk, longer than the counter's 240-byte blocks.
    std::mt19937 rng(7);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int round = 0; round < 50; ++round) {
        std::string body;
        const int n = static_cast<int>(rng() % 5000);
        for (int i = 0; i < n; ++i) {
            const unsigned r = rng() % 100;
            if (r < 90) body += alphabet[rng() % 64];
            else if (r < 95) body += "\r\n";
            else if (r < 97) body += "==";
            else body += static_cast<char>(rng() % 256);
        }
        INFO("round " << round << ", " << body.size() << " bytes");
        CHECK(sm::mail::base64DecodedSize(body) == sm::mail::decodeBase64(body).size());
    }
    CHECK(sm::mail::base64DecodedSize("") == 0);
    CHECK(sm::mail::base64DecodedSize("TWFu\r\nTWE=\r\n") == 5);  // "Man" + "Ma"
}

// Issue 11: a bounce acts only on mail we sent, found by the Message-ID in the returned
// headers (RFC 3462 text/rfc822-headers, as Postfix and Exchange send them) or in a
// returned message/rfc822.
TEST_CASE("a DSN's returned headers give the Message-ID of the mail it is about", "[parser][bounce]") {
    const std::string headersPart =
        "From: MAILER-DAEMON@mx.partner.example\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned to "
        "Sender\r\nMessage-ID: <dsn.1@mx.partner.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nI could not deliver your mail.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.partner.example\r\n\r\n"
        "Final-Recipient: rfc822; gone@partner.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Return-Path: <bounces+42@example.test>\r\nFrom: support@example.test\r\nTo: gone@partner.example\r\n"
        "Subject: Your IDs\r\nMessage-ID: <id-mail.42@example.test>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        "\r\n--B--\r\n";
    auto m = parseMail(headersPart);
    CHECK(m.returnedMessageId == "<id-mail.42@example.test>");
    CHECK(m.messageId == "<dsn.1@mx.partner.example>");

    // The same returned as a whole message (message/rfc822).
    std::string whole = headersPart;
    whole.replace(whole.find("text/rfc822-headers"), 19, "message/rfc822");
    whole.replace(whole.find("+0000\r\n\r\n--B--"), 15, "+0000\r\n\r\nYour IDs: ...\r\n\r\n--B--");
    CHECK(parseMail(whole).returnedMessageId == "<id-mail.42@example.test>");

    // A DSN that returns nothing names no mail of ours.
    std::string bare = headersPart.substr(0, headersPart.find("--B\r\nContent-Type: text/rfc822-headers")) + "--B--\r\n";
    CHECK(parseMail(bare).returnedMessageId.empty());
}

TEST_CASE("the returned Message-ID of real DSNs from the corpus", "[parser][bounce]") {
    // Real DSNs (../shared/corpus) returning headers (text/rfc822-headers) or the whole
    // mail (message/rfc822): the Message-ID each returns, read by eye from the file.
    const std::vector<std::pair<std::string, std::string>> dsns = {
        {"lhost-postfix-43.eml", "<11DA6AA80A5481396A07708AE233289E@nekonyaan>"},
        {"lhost-opensmtpd-06.eml", "<201612140903.uBE938DJ094645@nyaan.example.jp>"},
        {"lhost-amavis-01.eml", "<Qdmail.0.0.0e_8ed60e1eb3e559f02254e3437c3110b1@example.net>"},
        {"lhost-postfix-05.eml", "<FFFFFFFF.0000000@example.co.jp>"},
    };
    for (const auto& [name, returned] : dsns) {
        const std::string path = std::string(SUPPORTMAIL_SHARED_DIR) + "/corpus/sisimai-set-of-emails/maildir/bsd/" + name;
        std::ifstream in(path, std::ios::binary);
        REQUIRE(in);
        std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        INFO(name);
        CHECK(parseMail(raw).returnedMessageId == returned);
    }
}

TEST_CASE("inspect masks the IDs wherever a person wrote them, --show-ids shows them", "[parser][inspect]") {
    const std::string raw = "From: bob@example.test\r\nSubject: help for 0037123456\r\n"
                            "Message-ID: <1700000000.123@partner.example>\r\n\r\n"
                            "Access ID: 0037 123 456\r\nContract ID: c-7kq2m9xh4t\r\nProduct: Windows\r\n"
                            "Again: C-7KQ2M9XH4T, and order 12345678901 (eleven digits).\r\n";
    ParsedMail m = parseMail(raw);
    const std::string masked = inspectJson(m);
    INFO(masked);
    for (const char* clear : {"0037123456", "0037 123 456", "c-7kq2m9xh4t", "C-7KQ2M9XH4T", "7KQ2M9XH4T"})
        CHECK(masked.find(clear) == std::string::npos);
    auto obj = Poco::JSON::Parser().parse(masked).extract<Poco::JSON::Object::Ptr>();
    CHECK(obj->getValue<std::string>("subject") == "help for 0037xxxxxx");
    CHECK(obj->getObject("fields")->getValue<std::string>("access_id") == "0037xxxxxx");
    CHECK(obj->getObject("fields")->getValue<std::string>("contract_id") == "C-7Kxxxxxxxx");
    // Not an ID's shape: left alone; the Message-ID is a header, not a person's words.
    CHECK(masked.find("12345678901") != std::string::npos);
    CHECK(obj->getValue<std::string>("message_id") == "<1700000000.123@partner.example>");
    const std::string shown = inspectJson(m, true);
    CHECK(shown.find("0037 123 456") != std::string::npos);
    CHECK(shown.find("C-7KQ2M9XH4T") != std::string::npos);
}

TEST_CASE("a bounce's text is searched for addresses in one pass, as the pattern would find them", "[bounce]") {
    // The oracle is the pattern itself through std::regex (fine on short texts): random
    // texts over a few characters that make every edge (runs, dots, dashes, '@'s in a
    // row, a label cut short) must give the same runs in the same order.
    const std::regex re(R"([A-Za-z0-9._%+=#&'/!-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)");
    const std::string alphabet = "ab9.-@ !_";
    std::mt19937 rng(2026);
    int withAddresses = 0;
    for (int round = 0; round < 3000; ++round) {
        std::string text(rng() % 40, ' ');
        for (auto& c : text) c = alphabet[rng() % alphabet.size()];
        std::vector<std::string> expected;
        for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) expected.push_back(it->str());
        if (!expected.empty()) ++withAddresses;
        INFO("text: '" << text << "'");
        REQUIRE(sm::mail::addressRuns(text) == expected);
    }
    CHECK(withAddresses > 100);  // the texts did hold addresses, often
    CHECK(sm::mail::addressRuns("To: <anna.schmidt@contoso.example>, bob@x.y-") ==
          std::vector<std::string>{"anna.schmidt@contoso.example", "bob@x.y-"});
    // What made std::regex take seconds: a long run of address characters, an address
    // at its end. Here one pass, whatever the length.
    std::string run(200000, 'a');
    run += "@example.test";
    CHECK(sm::mail::addressRuns(run) == std::vector<std::string>{run});
    CHECK(sm::mail::addressRuns(std::string(200000, '@')).empty());
}

TEST_CASE("the Message-ID read from the header alone is the one the whole parse reads", "[parser]") {
    struct Case {
        const char* mail;
        const char* expected;
    };
    const Case cases[] = {
        {"From: a@b.example\r\nMessage-ID: <one@x.example>\r\n\r\nbody\r\n", "<one@x.example>"},
        // folded, lower-case name, blanks inside the brackets dropped
        {"message-id:\r\n  <two @x.example>\r\nSubject: s\r\n\r\n", "<two@x.example>"},
        // the first field counts, even when a later one is well formed
        {"Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n", "<first@x>"},
        // no <id>: the field's decoded text, as parseMail keeps it
        {"Message-ID:  plain-id@x.example \r\n\r\n", "plain-id@x.example"},
        {"Message-ID: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", "caf\xC3\xA9"},
        {"From: a@b.example\r\nSubject: no id\r\n\r\nMessage-ID: <in-body@x>\r\n", ""},
        // an mbox "From " line before the header, bare LF line ends
        {"From someone Mon Nov  2 10:00:00 2026\nMessage-ID: <mbox@x>\n\nbody\n", "<mbox@x>"},
    };
    for (const auto& c : cases) {
        INFO(c.mail);
        CHECK(headerMessageId(c.mail) == c.expected);
        CHECK(parseMail(c.mail).messageId == c.expected);
    }
    CHECK_THROWS_AS(headerMessageId(std::string(200, 'x'), ParseLimits{100}), MailRejected);
}
