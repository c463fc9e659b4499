// The composer: headers, RFC 2047, quoted-printable, CRLF, folding, header
// injection, Message-IDs, and the independent validator on a real mail.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mail/compose.h"
#include "mail/templates.h"

using namespace sm::mail;

namespace {

const std::string kVietnamese = "Xác nhận yêu cầu hỗ trợ: ID truy cập và ID hợp đồng của Công ty Đại Việt";

// ---- tiny decoders, independent of the code under test ----

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::string base64Decode(const std::string& in) {
    static const std::string tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        const auto v = tbl.find(c);
        REQUIRE(v != std::string::npos);
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

/// Decodes one "=?UTF-8?Q|B?...?=" word.
std::string decodeWord(const std::string& w) {
    REQUIRE(w.size() >= 12);
    REQUIRE(w.compare(0, 8, "=?UTF-8?") == 0);
    REQUIRE(w.compare(w.size() - 2, 2, "?=") == 0);
    REQUIRE(w[9] == '?');
    const std::string payload = w.substr(10, w.size() - 12);
    if (w[8] == 'B' || w[8] == 'b') return base64Decode(payload);
    REQUIRE((w[8] == 'Q' || w[8] == 'q'));
    std::string out;
    for (std::size_t i = 0; i < payload.size(); ++i) {
        if (payload[i] == '_') {
            out += ' ';
        } else if (payload[i] == '=') {
            REQUIRE(i + 2 < payload.size());
            out += static_cast<char>(hexValue(payload[i + 1]) * 16 + hexValue(payload[i + 2]));
            i += 2;
        } else {
            out += payload[i];
        }
    }
    return out;
}

bool isEncodedWord(const std::string& w) {
    return w.size() >= 12 && w.compare(0, 2, "=?") == 0 && w.compare(w.size() - 2, 2, "?=") == 0;
}

/// RFC 2047 decoding of an unfolded unstructured value: whitespace between two
/// adjacent encoded words disappears, other whitespace stays.
std::string decodeHeader(const std::string& value) {
    std::string out;
    std::string pendingSpace;
    bool prevEncoded = false;
    std::size_t i = 0;
    while (i < value.size()) {
        std::size_t j = i;
        while (j < value.size() && value[j] != ' ' && value[j] != '\t') ++j;
        const std::string word = value.substr(i, j - i);
        const bool enc = isEncodedWord(word);
        if (!(enc && prevEncoded)) out += pendingSpace;
        out += enc ? decodeWord(word) : word;
        prevEncoded = enc;
        pendingSpace.clear();
        i = j;
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) pendingSpace += value[i++];
    }
    return out;
}

std::string qpDecode(const std::string& in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '=') {
            out += in[i];
        } else if (in.compare(i, 3, "=\r\n") == 0) {
            i += 2;
        } else {
            REQUIRE(i + 2 < in.size());
            REQUIRE(hexValue(in[i + 1]) >= 0);
            REQUIRE(hexValue(in[i + 2]) >= 0);
            out += static_cast<char>(hexValue(in[i + 1]) * 16 + hexValue(in[i + 2]));
            i += 2;
        }
    }
    return out;
}

std::vector<std::string> splitLines(const std::string& s) {
    std::vector<std::string> lines;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = s.find("\r\n", i);
        if (j == std::string::npos) j = s.size();
        lines.push_back(s.substr(i, j - i));
        i = j + 2;
    }
    return lines;
}

std::string headerBlock(const std::string& mail) {
    const auto end = mail.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    return mail.substr(0, end + 2);
}

/// Unfolded value of every top-level header called `name` (case-insensitive).
std::vector<std::string> headerValues(const std::string& mail, const std::string& name) {
    std::vector<std::string> out;
    const auto lines = splitLines(headerBlock(mail));
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto colon = lines[i].find(':');
        if (lines[i].empty() || lines[i][0] == ' ' || lines[i][0] == '\t' || colon == std::string::npos) continue;
        std::string n = lines[i].substr(0, colon);
        if (n.size() != name.size() || !std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
            }))
            continue;
        std::string v = lines[i].substr(colon + 1);
        while (i + 1 < lines.size() && !lines[i + 1].empty() && (lines[i + 1][0] == ' ' || lines[i + 1][0] == '\t'))
            v += lines[++i];
        const auto b = v.find_first_not_of(" \t");
        out.push_back(b == std::string::npos ? "" : v.substr(b));
    }
    return out;
}

std::string header(const std::string& mail, const std::string& name) {
    const auto v = headerValues(mail, name);
    REQUIRE(v.size() == 1);
    return v[0];
}

void requireCrlfOnly(const std::string& bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (bytes[i] == '\n') REQUIRE((i > 0 && bytes[i - 1] == '\r'));
        if (bytes[i] == '\r') REQUIRE((i + 1 < bytes.size() && bytes[i + 1] == '\n'));
    }
}

void requireAsciiAndShortLines(const std::string& bytes) {
    for (unsigned char c : bytes) REQUIRE(c < 0x80);
    for (const auto& line : splitLines(bytes)) REQUIRE(line.size() <= 998);
}

/// Every encoded word in `s` is <= 75 chars and decodes to valid UTF-8 on its own.
void requireGoodEncodedWords(const std::string& s) {
    std::size_t i = 0;
    while ((i = s.find("=?", i)) != std::string::npos) {
        const auto end = s.find("?=", i + 10);
        REQUIRE(end != std::string::npos);
        const std::string w = s.substr(i, end + 2 - i);
        CAPTURE(w);
        REQUIRE(w.size() <= 75);
        const std::string d = decodeWord(w);
        // valid UTF-8 on its own: no character split across words
        for (std::size_t k = 0; k < d.size();) {
            const unsigned char c = static_cast<unsigned char>(d[k]);
            const std::size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            REQUIRE(len != 0);
            REQUIRE(k + len <= d.size());
            for (std::size_t m = 1; m < len; ++m) REQUIRE((static_cast<unsigned char>(d[k + m]) & 0xC0) == 0x80);
            k += len;
        }
        i = end + 2;
    }
}

/// The decoded bodies of a multipart/alternative (or the single part).
std::vector<std::string> partBodies(const std::string& mail) {
    std::vector<std::string> out;
    const std::string ct = header(mail, "Content-Type");
    const auto b = ct.find("boundary=\"");
    if (b == std::string::npos) {
        out.push_back(qpDecode(mail.substr(mail.find("\r\n\r\n") + 4)));
        return out;
    }
    const std::string boundary = "--" + ct.substr(b + 10, ct.find('"', b + 10) - b - 10);
    std::size_t pos = mail.find(boundary + "\r\n");
    while (pos != std::string::npos) {
        const auto start = mail.find("\r\n\r\n", pos) + 4;
        const auto next = mail.find("\r\n" + boundary, start);
        REQUIRE(next != std::string::npos);
        out.push_back(qpDecode(mail.substr(start, next - start)));
        pos = mail.compare(next + 2, boundary.size() + 2, boundary + "--") == 0 ? std::string::npos : next + 2;
    }
    return out;
}

std::string crlf(std::string s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
            out += "\r\n";
        } else if (s[i] == '\n') {
            out += "\r\n";
        } else {
            out += s[i];
        }
    }
    return out;
}

OutgoingMessage sample() {
    OutgoingMessage m;
    m.from = {"Partner Support", "support@example.test"};
    m.to = {{"Nguyễn Văn An", "an.nguyen@example.test"}};
    m.subject = kVietnamese;
    m.text = "Xin chào anh An,\nID truy cập: 0037012345\nID hợp đồng: 0001234567\n";
    m.html = "<p>Xin chào anh An,</p>\n<p>ID truy cập: <b>0037012345</b></p>\n";
    m.messageIdDomain = "support.example.test";
    return m;
}

}  // namespace

TEST_CASE("compose: a plain-text mail has every required header, once, and CRLF only", "[compose]") {
    OutgoingMessage m;
    m.from = {"", "support@example.test"};
    m.to = {{"", "a@example.test"}};
    m.subject = "Hello";
    m.text = "Line one\nLine two";
    m.date = Poco::Timestamp::fromEpochTime(1700000000);
    const ComposedMail c = compose(m);
    requireCrlfOnly(c.bytes);
    requireAsciiAndShortLines(c.bytes);
    CHECK(header(c.bytes, "From") == "support@example.test");
    CHECK(header(c.bytes, "To") == "a@example.test");
    CHECK(header(c.bytes, "Subject") == "Hello");
    CHECK(header(c.bytes, "Date") == "Tue, 14 Nov 2023 22:13:20 +0000");
    CHECK(header(c.bytes, "Message-ID") == c.messageId);
    CHECK(header(c.bytes, "MIME-Version") == "1.0");
    CHECK(header(c.bytes, "Auto-Submitted") == "auto-generated");
    CHECK(header(c.bytes, "Content-Type").find("text/plain") == 0);
    CHECK(header(c.bytes, "Content-Type").find("UTF-8") != std::string::npos);
    CHECK(header(c.bytes, "Content-Transfer-Encoding") == "quoted-printable");
    CHECK(headerValues(c.bytes, "Cc").empty());
    CHECK(headerValues(c.bytes, "In-Reply-To").empty());
    CHECK(headerValues(c.bytes, "References").empty());
    CHECK(partBodies(c.bytes) == std::vector<std::string>{"Line one\r\nLine two"});
}

TEST_CASE("compose: Vietnamese multipart/alternative round trip", "[compose]") {
    OutgoingMessage m = sample();
    m.cc = {{"Trần Thị Bình", "binh@example.test"}, {"", "ops@example.test"}};
    m.inReplyTo = "<parent@example.test>";
    m.references = {"<root@example.test>", "<parent@example.test>"};
    m.autoSubmitted = "auto-replied";
    m.extraHeaders = {{"X-Supportmail-Case", "2024-000123"}, {"X-Note", "Ghi chú"}};
    const ComposedMail c = compose(m);
    requireCrlfOnly(c.bytes);
    requireAsciiAndShortLines(c.bytes);
    const std::string head = headerBlock(c.bytes);
    requireGoodEncodedWords(head);

    CHECK(decodeHeader(header(c.bytes, "Subject")) == kVietnamese);
    const std::string to = header(c.bytes, "To");
    CHECK(to.find("<an.nguyen@example.test>") != std::string::npos);
    CHECK(decodeHeader(to.substr(0, to.find(" <"))) == "Nguyễn Văn An");
    const std::string cc = header(c.bytes, "Cc");
    CHECK(cc.find("<binh@example.test>, ops@example.test") != std::string::npos);
    CHECK(header(c.bytes, "From") == "Partner Support <support@example.test>");
    CHECK(header(c.bytes, "In-Reply-To") == "<parent@example.test>");
    CHECK(header(c.bytes, "References") == "<root@example.test> <parent@example.test>");
    CHECK(header(c.bytes, "Auto-Submitted") == "auto-replied");
    CHECK(header(c.bytes, "X-Supportmail-Case") == "2024-000123");
    CHECK(decodeHeader(header(c.bytes, "X-Note")) == "Ghi chú");
    CHECK(header(c.bytes, "Content-Type").find("multipart/alternative") == 0);

    const auto bodies = partBodies(c.bytes);
    REQUIRE(bodies.size() == 2);
    CHECK(bodies[0] == crlf(m.text));
    CHECK(bodies[1] == crlf(m.html));
    CHECK(c.bytes.find("Content-Type: text/plain; charset") != std::string::npos);
    CHECK(c.bytes.find("Content-Type: text/html; charset") != std::string::npos);
}

TEST_CASE("compose: invalid UTF-8 in a body becomes U+FFFD, NUL is encoded", "[compose]") {
    OutgoingMessage m = sample();
    m.text = std::string("ok \xC3\x28 \xF0\x9F end\0z", 14);
    m.html.clear();
    const ComposedMail c = compose(m);
    requireCrlfOnly(c.bytes);
    requireAsciiAndShortLines(c.bytes);
    // one U+FFFD per byte that cannot start a valid sequence
    CHECK(partBodies(c.bytes).at(0) == std::string("ok \xEF\xBF\xBD( \xEF\xBF\xBD\xEF\xBF\xBD end\0z", 20));
}

TEST_CASE("compose: In-Reply-To alone also gives References, malformed ids are dropped", "[compose]") {
    OutgoingMessage m = sample();
    m.inReplyTo = "<p@example.test>";
    auto c = compose(m);
    CHECK(header(c.bytes, "References") == "<p@example.test>");

    m.inReplyTo = "<bad id>\r\nBcc: x@y";
    m.references = {"not-an-id", "<ok@example.test>\r\nBcc: evil@example.test"};
    c = compose(m);
    CHECK(headerValues(c.bytes, "In-Reply-To").empty());
    CHECK(header(c.bytes, "References") == "<ok@example.test>");
    CHECK(headerValues(c.bytes, "Bcc").empty());

    m.inReplyTo.clear();
    m.references.clear();
    for (int i = 0; i < 100; ++i) m.references.push_back("<r" + std::to_string(i) + "@example.test>");
    c = compose(m);
    const std::string refs = header(c.bytes, "References");
    CHECK(refs.find("<r0@example.test> <r81@example.test>") == 0);
    CHECK(refs.find("<r99@example.test>") != std::string::npos);
    CHECK(refs.find("<r50@example.test>") == std::string::npos);
}

TEST_CASE("encodeHeaderText: ASCII unchanged, non-ASCII as short valid encoded-words", "[compose]") {
    CHECK(encodeHeaderText("Hello world") == "Hello world");
    CHECK(encodeHeaderText("") == "");
    CHECK(encodeHeaderText("  a   b\t c ") == "a b c");

    const std::vector<std::string> inputs = {
        kVietnamese,
        "Đ",
        "[Case 2024-000123] Re: Xác nhận",
        "Re: hỗ trợ - 0037012345 (done)",
        std::string(300, 'a') + " plain",
        "literal =?UTF-8?Q?x?= text",
        "emoji 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀 end",
    };
    std::string longVi;
    for (int i = 0; i < 40; ++i) longVi += "Người liên hệ chương trình ";
    std::vector<std::string> all = inputs;
    all.push_back(longVi.substr(0, longVi.size() - 1));
    for (const std::string& in : all) {
        CAPTURE(in);
        const std::string enc = encodeHeaderText(in);
        CAPTURE(enc);
        for (unsigned char c : enc) REQUIRE((c >= 0x20 && c < 0x7F));
        requireGoodEncodedWords(enc);
        // every whitespace-separated word fits a folded line
        std::istringstream words(enc);
        for (std::string w; words >> w;) REQUIRE(w.size() <= 77);
        CHECK(decodeHeader(enc) == in);
    }
    // plain words around the encoded run stay readable
    const std::string mixed = encodeHeaderText("[Case 2024-000123] Re: Xác nhận");
    CHECK(mixed.find("[Case 2024-000123] Re: =?UTF-8?") == 0);
}

TEST_CASE("encodeHeaderText: control characters and invalid UTF-8 are neutralised", "[compose]") {
    CHECK(encodeHeaderText("a\r\nBcc: evil@x") == "a Bcc: evil@x");
    CHECK(encodeHeaderText(std::string("a\0b", 3)) == "a b");
    const std::string bad = encodeHeaderText("x\xC3(\xFFy");
    CHECK(decodeHeader(bad) == "x\xEF\xBF\xBD(\xEF\xBF\xBDy");
}

TEST_CASE("formatAddress: bare, quoted and encoded forms, invalid addresses refused", "[compose]") {
    CHECK(formatAddress({"", "a@example.test"}) == "a@example.test");
    CHECK(formatAddress({"John Smith", "js@example.test"}) == "John Smith <js@example.test>");
    CHECK(formatAddress({"Smith, John", "js@example.test"}) == "\"Smith, John\" <js@example.test>");
    CHECK(formatAddress({"A \"B\" C\\", "js@example.test"}) == "\"A \\\"B\\\" C\\\\\" <js@example.test>");
    CHECK(formatAddress({"x\r\nBcc: evil@x", "js@example.test"}) == "\"x Bcc: evil@x\" <js@example.test>");
    const std::string vi = formatAddress({"Nguyễn Thị Minh Khai, Phòng Kỹ thuật", "k@example.test"});
    requireGoodEncodedWords(vi);
    CHECK(decodeHeader(vi.substr(0, vi.find(" <"))) == "Nguyễn Thị Minh Khai, Phòng Kỹ thuật");
    CHECK(vi.find(" <k@example.test>") != std::string::npos);

    for (const char* bad : {"", "no-at-sign", "a@b\r\nBcc: evil@x", "a b@example.test", "a<b@example.test",
                            "a>b@example.test", "a@b,c@d", "@example.test", "a@", "a@b@c", "ä@example.test",
                            "a@b\n", "a\t@b"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(formatAddress({"", bad}), std::invalid_argument);
    }
    CHECK_THROWS_AS(formatAddress({"", std::string(250, 'a') + "@b.cd"}), std::invalid_argument);
}

TEST_CASE("compose: header injection cannot add header lines", "[compose]") {
    OutgoingMessage m = sample();
    m.subject = "x\r\nBcc: evil@x";
    m.from.name = "Support\r\nBcc: evil2@x";
    m.to[0].name = "An\nBcc: evil3@x";
    m.autoSubmitted = "auto-replied\r\nBcc: evil4@x";
    m.extraHeaders = {{"X-Case", "1\r\nBcc: evil5@x\r\n\r\nbody"}};
    const ComposedMail c = compose(m);
    requireCrlfOnly(c.bytes);
    CHECK(headerValues(c.bytes, "Bcc").empty());
    for (const auto& line : splitLines(headerBlock(c.bytes))) CHECK(line.rfind("Bcc", 0) != 0);
    CHECK(decodeHeader(header(c.bytes, "Subject")) == "x Bcc: evil@x");
    CHECK(header(c.bytes, "X-Case") == "1 Bcc: evil5@x body");

    OutgoingMessage bad = sample();
    bad.to[0].email = "a@example.test\r\nBcc: evil@x";
    CHECK_THROWS_AS(compose(bad), std::invalid_argument);
    bad = sample();
    bad.from.email = "support@example.test>";
    CHECK_THROWS_AS(compose(bad), std::invalid_argument);
    bad = sample();
    bad.extraHeaders = {{"X-A\r\nBcc", "v"}};
    CHECK_THROWS_AS(compose(bad), std::invalid_argument);
    for (const char* reserved : {"Bcc", "bcc", "From", "Subject", "Message-Id", "Content-Type", "MIME-Version", "X:Y"}) {
        bad.extraHeaders = {{reserved, "v"}};
        CHECK_THROWS_AS(compose(bad), std::invalid_argument);
    }
    bad = sample();
    bad.messageIdDomain = "example.test>\r\nBcc: x";
    CHECK_THROWS_AS(compose(bad), std::invalid_argument);
    bad = sample();
    bad.to.clear();
    CHECK_THROWS_AS(compose(bad), std::invalid_argument);
}

TEST_CASE("newMessageId: well formed and unique over 10,000 calls", "[compose]") {
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) {
        const std::string id = newMessageId("example.test");
        REQUIRE(id.front() == '<');
        REQUIRE(id.size() > 30);
        REQUIRE(id.compare(id.size() - 14, 14, "@example.test>") == 0);
        REQUIRE(id.find_first_of(" \r\n\t\"()") == std::string::npos);
        REQUIRE(seen.insert(id).second);
    }
    CHECK_THROWS_AS(newMessageId(""), std::invalid_argument);
    CHECK_THROWS_AS(newMessageId("a b"), std::invalid_argument);
    // compose uses fresh ids too
    const OutgoingMessage m = sample();
    CHECK(compose(m).messageId != compose(m).messageId);
}

TEST_CASE("compose: long headers are folded, no line over 998, bodies over 76", "[compose]") {
    OutgoingMessage m = sample();
    std::string subject;
    for (int i = 0; i < 200; ++i) subject += "word" + std::to_string(i) + " ";
    subject += std::string(3000, 'x');  // one word longer than a line
    m.subject = subject;
    m.to.clear();
    for (int i = 0; i < 150; ++i) m.to.push_back({"Người nhận số " + std::to_string(i), "r" + std::to_string(i) + "@example.test"});
    m.extraHeaders = {{"X-Long", std::string(2000, 'y')}};
    m.text = std::string(5000, 'a') + "\n" + std::string(100, '=') + "\n" + "trailing   \n.leading dot\n";
    const ComposedMail c = compose(m);
    requireCrlfOnly(c.bytes);
    requireAsciiAndShortLines(c.bytes);
    requireGoodEncodedWords(headerBlock(c.bytes));
    for (const auto& line : splitLines(headerBlock(c.bytes))) CHECK(line.size() <= 78);
    CHECK(decodeHeader(header(c.bytes, "Subject")) == subject.substr(0, subject.size()));
    CHECK(decodeHeader(header(c.bytes, "X-Long")) == std::string(2000, 'y'));
    const std::string to = header(c.bytes, "To");
    CHECK(to.find("<r149@example.test>") != std::string::npos);

    const std::string body = c.bytes.substr(c.bytes.find("\r\n\r\n") + 4);
    for (const auto& line : splitLines(body)) {
        CHECK(line.size() <= 76);
        CHECK((line.empty() || line.back() != ' '));
        CHECK((line.empty() || line[0] != '.'));
    }
    CHECK(partBodies(c.bytes).at(0) == crlf(m.text));
}

TEST_CASE("encodeQuotedPrintable: CRLF only, exact round trip", "[compose]") {
    const std::vector<std::string> inputs = {"", "a", "a\n", "a\r\nb\rc\n\n", "tab\there ", "= =3D\xC3\xA9",
                                             std::string(200, ' '), "x\x01y\x7F", "Đây là dòng tiếng Việt rất dài " + std::string(90, 'z')};
    for (const std::string& in : inputs) {
        CAPTURE(in);
        const std::string qp = encodeQuotedPrintable(in);
        requireCrlfOnly(qp);
        for (unsigned char c : qp) REQUIRE((c < 0x7F && (c >= 0x20 || c == '\r' || c == '\n')));
        for (const auto& line : splitLines(qp)) {
            REQUIRE(line.size() <= 76);
            REQUIRE((line.empty() || (line.back() != ' ' && line.back() != '\t')));
        }
        CHECK(qpDecode(qp) == crlf(in));
    }
}

TEST_CASE("compose: a Vietnamese id_mail passes the independent validator", "[compose]") {
    const std::string shared = SUPPORTMAIL_SHARED_DIR;
    if (!std::filesystem::is_directory(shared) || !std::filesystem::exists(shared + "/tools/validate_eml.py"))
        FAIL("the shared dir (corpus, tools/validate_eml.py) is absent: " << shared);

    TemplateSet templates(std::string(SUPPORTMAIL_SOURCE_DIR) + "/templates");
    TemplateData data;
    data.set("contact_name", "Nguyễn Văn An");
    data.set("partner_name", "Công ty TNHH Đại Việt & Cộng sự");
    data.set("partner_id", "4648141");
    data.set("plan_name", "Partner Gold Support 20Pack");
    data.set("display_name", "26 SCS-4648141-unk (0037xxxxxx)");
    data.set("access_id", "0037012345");
    data.set("contract_id", "0001234567");
    data.set("activated_on", "2026-01-05");
    data.set("expires_on", "2027-01-05");
    data.set("incidents", "20");
    data.set("hours", "0");
    data.set("support_address", "support@example.test");
    data.set("scope_text", "sản phẩm tại chỗ và đám mây");
    const RenderedMail r = templates.render("id_mail", "vi", data);

    OutgoingMessage m = sample();
    m.subject = r.subject;
    m.text = r.text;
    m.html = r.html;
    m.cc = {{"Trần Thị Bình, \"Phòng Kỹ thuật\"", "binh@example.test"}};
    m.inReplyTo = "<parent@example.test>";
    const ComposedMail c = compose(m);
    CHECK(decodeHeader(header(c.bytes, "Subject")) == r.subject);
    const auto bodies = partBodies(c.bytes);
    REQUIRE(bodies.size() == 2);
    CHECK(bodies[0] == crlf(r.text));
    CHECK(bodies[1] == crlf(r.html));

    const std::string base = (std::filesystem::temp_directory_path() / ("sm-compose-" + std::to_string(::getpid()))).string();
    const std::string eml = base + ".eml", log = base + ".log";
    {
        std::ofstream out(eml, std::ios::binary);
        out << c.bytes;
    }
    const std::string cmd = "python3 '" + shared + "/tools/validate_eml.py' check --crlf '" + eml + "' > '" + log + "' 2>&1";
    const int status = std::system(cmd.c_str());
    std::ifstream in(log);
    const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CAPTURE(output);
    REQUIRE(status != -1);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(output.find("WARN") == std::string::npos);
    std::remove(eml.c_str());
    std::remove(log.c_str());
}
