// The parser against real-world mail from other projects (../shared/corpus):
// every file parses in-process without crash or stall, decoded subject /
// sender / text agree with the upstream parsers' expectations for >= 98 % of
// the records that carry them (reviewed exceptions listed below with their
// reasons; the raw rate, which counts them as disagreements, is held at a
// floor), and the sisimai folders classify as bounce / not bounce /
// auto-reply. Set CORPUS_VERBOSE=1 to print every disagreement.
#include <catch2/catch.hpp>

#include "mail/charset.h"
#include "mail/classify.h"
#include "mail/html_text.h"
#include "mail/inspect.h"
#include "mail/mime_parser.h"
#include "mail/rfc2047.h"
#include "mail/rfc2231.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace sm::mail;

namespace {

const std::string kCorpus = std::string(SUPPORTMAIL_SHARED_DIR) + "/corpus";

/// Reviewed disagreements: message path below corpus/ -> reason. Each one was
/// looked at; in each the upstream parser is wrong, guesses, or contradicts
/// another upstream expectation for the same bytes. They count as
/// disagreements in the raw rate; a listed one that starts to agree fails the
/// test until it is taken off the list.
const std::map<std::string, std::string> kExceptions = {
    {"zbateson-mail-mime-parser/emails/m0018.txt",
     "zbateson strips uuencoded blocks from the text; mime4j (sig-uu, uu-zeegee) and Zammad (mail025) keep "
     "them, as we do (the blocks are also listed as attachments): the upstreams contradict each other"},
    {"zbateson-mail-mime-parser/emails/m1011.txt",
     "the UTF-7 body encodes other characters (+XKM- is U+5CA3, Python's codec agrees with us) than the "
     "shared expectation file; the subject agrees"},
    {"zammad/mail/mail018.box",
     "Zammad leaves the UTF-7 (unicode-1-1-utf-7) encoded words and body undecoded (INDEX.md notes it); we "
     "decode them"},
    {"zammad/mail/mail046.box",
     "raw 8-bit GB2312 From name: Zammad garbles it as ISO-8859-2 ('ÎäŔźłÉ'); we read 武兰成 (subject agrees)"},
    {"zammad/mail/mail054.box",
     "the boundary parameter sits on an unindented line: Zammad finds no parts and shows nothing; we "
     "recover the boundary and show the text/plain part ('some text')"},
    {"zammad/mail/mail060.box",
     "unknown label iso-gb2312 on mixed UTF-8 / Latin-1 bytes: Zammad's expectation is the UTF-8 half read "
     "as windows-1250 (mojibake); we keep each half's characters"},
    {"zammad/mail/mail065.box",
     "Zammad splits the encoded word at the comma inside it (name '=20Andreas?='); we decode 'Bürling, Andreas'"},
    {"zammad/mail/mail076.box", "broken From (\"...\"@example.com>): Zammad copies the address into the name"},
    {"zammad/mail/mail087.box",
     "From without angle brackets: Zammad copies the address into the name; Zammad also drops the untyped "
     "text part after the PDF, which we take as the body"},
    {"zammad/mail/mail105.box",
     "multipart/mixed without a single boundary line: Zammad shows no text, we show the body"},
    {"mime4j/testmsgs/malformedHeaderStartsBody-nocrlfcrlf.msg",
     "byte-identical to malformedHeader-nocrlfcrlf.msg, whose expectation contradicts this one (mime4j's "
     "malformedHeaderStartsBody option); we follow the default mode"},
    {"mime4j/testmsgs/malformedHeaderStartsBody-noheader.msg",
     "byte-identical to malformedHeader-noheader.msg, whose expectation contradicts this one (mime4j's "
     "malformedHeaderStartsBody option); we follow the default mode"},
};

/// Floor for the raw agreement rate (every carrying record counted, listed
/// exceptions as disagreements): 265 / 277 today. The 98 % of the requirement
/// holds over the records not reviewed as upstream errors (see kExceptions);
/// raw it is out of reach without adopting those errors.
constexpr double kMinRawRate = 95.6;

/// Per-message bound on the CPU time of the parsing thread (not wall time: on a loaded CI
/// machine a 3.4 MB file took 3.5 s of wall time for well under one second of CPU);
/// sanitizer and debug builds are ~10x slower.
/// (clang 14 does not define __SANITIZE_ADDRESS__, it answers __has_feature.)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SUPPORTMAIL_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SUPPORTMAIL_TEST_ASAN) || !defined(NDEBUG)
constexpr double kMaxMillisPerMessage = 30000;
#else
constexpr double kMaxMillisPerMessage = 3000;
#endif

double threadCpuMillis() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

std::string readFile(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// Whitespace runs (ASCII and U+00A0) to one space, trimmed.
std::string collapse(const std::string& s) {
    std::string out;
    bool space = false;
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
        if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xA0) {
            ws = true;
            ++i;
        }
        if (ws) {
            space = !out.empty();
            continue;
        }
        if (space) out.push_back(' ');
        space = false;
        out.push_back(static_cast<char>(c));
    }
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return s;
}

bool looksLikeHtml(const std::string& s) {
    auto l = lower(s.substr(0, 2000));
    return l.find("<div") != std::string::npos || l.find("<p>") != std::string::npos ||
           l.find("<br") != std::string::npos || l.find("<html") != std::string::npos ||
           l.find("<span") != std::string::npos || l.find("<table") != std::string::npos;
}

struct Record {
    std::string message;
    Poco::JSON::Object::Ptr json;
};

std::vector<Record> loadExpectations() {
    std::vector<Record> out;
    std::ifstream f(kCorpus + "/expectations.jsonl");
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        Poco::JSON::Parser parser;
        auto obj = parser.parse(line).extract<Poco::JSON::Object::Ptr>();
        out.push_back({obj->getValue<std::string>("message"), obj});
    }
    return out;
}

std::string str(const Poco::JSON::Object::Ptr& o, const char* key) {
    return o->has(key) && !o->isNull(key) ? o->getValue<std::string>(key) : std::string();
}

/// A key present with a non-null value.
bool carries(const Poco::JSON::Object::Ptr& o, const char* key) { return o->has(key) && !o->isNull(key); }

/// Expected body text (UTF-8) of a record, or false when it carries none.
/// `fromHtmlPart`: the record describes the HTML alternative (zbateson's
/// html_file), to compare with our HTML part made text.
bool expectedText(const Poco::JSON::Object::Ptr& r, std::string& text, bool& isHtml, bool& fromHtmlPart) {
    isHtml = false;
    fromHtmlPart = false;
    if (carries(r, "text")) {
        text = str(r, "text");
        isHtml = looksLikeHtml(text);
        return true;
    }
    std::string file = str(r, "text_file");
    if (file.empty()) {
        file = str(r, "html_file");
        isHtml = true;
        fromHtmlPart = true;
    }
    if (file.empty()) return false;
    std::string bytes = readFile(kCorpus + "/" + file);
    std::string charset = str(r, "text_file_charset");
    if (charset.empty() && r->has("leaf_parts")) {
        // mime4j: the leaf's own charset (files hold transfer-decoded bytes).
        auto leaves = r->getArray("leaf_parts");
        for (size_t i = 0; i < leaves->size(); ++i) {
            auto leaf = leaves->getObject(static_cast<unsigned>(i));
            if (str(leaf, "body_file") == file) {
                charset = parseParamHeader(str(leaf, "content_type")).param("charset");
                if (lower(parseParamHeader(str(leaf, "content_type")).value) == "text/html") isHtml = true;
            }
        }
    }
    convertToUtf8(bytes, charset, text);
    if (isHtml && !looksLikeHtml(text)) isHtml = false;
    return true;
}

/// mime4j lists leaves without choosing a body. When the leaf the record names
/// is blank, a body chooser skips it: the record then accepts the text of any
/// other text leaf (HTML made text).
std::vector<std::string> otherTextLeaves(const Poco::JSON::Object::Ptr& r) {
    std::vector<std::string> out;
    if (!r->has("leaf_parts") || r->isNull("leaf_parts")) return out;
    auto leaves = r->getArray("leaf_parts");
    for (size_t i = 0; i < leaves->size(); ++i) {
        auto leaf = leaves->getObject(static_cast<unsigned>(i));
        if (str(leaf, "kind") != "text-body" || str(leaf, "body_file") == str(r, "text_file")) continue;
        ParamHeader ct = parseParamHeader(str(leaf, "content_type"));
        std::string text;
        convertToUtf8(readFile(kCorpus + "/" + str(leaf, "body_file")), ct.param("charset"), text);
        out.push_back(collapse(ct.value == "text/html" ? htmlToText(text) : text));
    }
    return out;
}

}  // namespace

TEST_CASE("every corpus message parses in-process, bounded in time", "[corpus]") {
    if (!fs::is_directory(kCorpus)) FAIL("corpus absent: ../shared/corpus not found");
    size_t files = 0, rejected = 0;
    std::vector<std::string> slow;
    double worst = 0;
    std::string worstPath;
    for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
        if (!entry.is_regular_file()) continue;
        ++files;
        std::string raw = readFile(entry.path());
        double t0 = threadCpuMillis();
        try {
            ParsedMail m = parseMail(raw);
            std::string json = inspectJson(m);
            CHECK(isValidUtf8(json));
        } catch (const MailRejected& e) {
            ++rejected;
            INFO(entry.path().string() << ": " << e.what());
        }
        double ms = threadCpuMillis() - t0;
        if (ms > worst) worst = ms, worstPath = entry.path().string();
        if (ms > kMaxMillisPerMessage) slow.push_back(entry.path().string());
    }
    std::cout << "corpus: " << files << " files parsed, " << rejected << " rejected, slowest " << worst << " ms of CPU ("
              << worstPath << ")\n";
    CHECK(files >= 1761);
    CHECK(rejected == 0);
    CHECK(slow.empty());
}

TEST_CASE("every corpus message: fetch's header-only Message-ID equals the whole parse's", "[corpus]") {
    if (!fs::is_directory(kCorpus)) FAIL("corpus absent: ../shared/corpus not found");
    size_t files = 0, withId = 0;
    for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
        if (!entry.is_regular_file()) continue;
        ++files;
        const std::string raw = readFile(entry.path());
        INFO(entry.path().string());
        std::string whole;
        try {
            whole = parseMail(raw).messageId;
        } catch (const MailRejected&) {
            CHECK_THROWS_AS(headerMessageId(raw), MailRejected);
            continue;
        }
        CHECK(headerMessageId(raw) == whole);
        withId += !whole.empty();
    }
    CHECK(files >= 1761);
    CHECK(withId >= files / 2);  // most real mail has one: the comparison ran on them
}

TEST_CASE("decoded subject, sender and text agree with expectations.jsonl", "[corpus]") {
    if (!fs::is_directory(kCorpus)) FAIL("corpus absent: ../shared/corpus not found");
    bool verbose = std::getenv("CORPUS_VERBOSE") != nullptr;
    auto records = loadExpectations();
    REQUIRE(records.size() >= 280);
    size_t carryingRecords = 0, agreeing = 0;
    size_t subjects = 0, subjectsOk = 0, senders = 0, sendersOk = 0, texts = 0, textsOk = 0;
    std::vector<std::string> unlisted;
    std::set<std::string> stillFailing;
    for (const auto& rec : records) {
        const auto& r = rec.json;
        ParsedMail m = parseMail(readFile(kCorpus + "/" + rec.message));
        bool carrying = false, ok = true;
        std::ostringstream why;
        if (carries(r, "subject") || carries(r, "subject_raw")) {
            carrying = true;
            ++subjects;
            std::string want = carries(r, "subject") ? str(r, "subject") : decodeRfc2047(str(r, "subject_raw"));
            if (collapse(want) == collapse(m.subject)) {
                ++subjectsOk;
            } else {
                ok = false;
                why << "  subject: want [" << want << "] got [" << m.subject << "]\n";
            }
        }
        if (carries(r, "from_addr") || carries(r, "from_raw")) {
            carrying = true;
            ++senders;
            bool good;
            if (carries(r, "from_addr")) {
                good = lower(str(r, "from_addr")) == lower(m.from.email) &&
                       (!carries(r, "from_name") || collapse(str(r, "from_name")) == collapse(m.from.name));
            } else {
                std::string raw = lower(str(r, "from_raw"));
                good = m.from.email.empty() ? raw.find('@') == std::string::npos
                                            : raw.find(lower(m.from.email)) != std::string::npos;
            }
            if (good) {
                ++sendersOk;
            } else {
                ok = false;
                why << "  from: want [" << str(r, "from_name") << "|" << str(r, "from_addr") << str(r, "from_raw")
                    << "] got [" << m.from.name << "|" << m.from.email << "]\n";
            }
        }
        std::string want;
        bool isHtml = false, fromHtmlPart = false;
        if (expectedText(r, want, isHtml, fromHtmlPart)) {
            carrying = true;
            ++texts;
            std::string wantText = collapse(isHtml ? htmlToText(want) : want);
            // Zammad's placeholder for a body without visible text.
            if (wantText == "no visible content" && carries(r, "text")) wantText.clear();
            std::string got = collapse(fromHtmlPart && !m.html.empty() ? htmlToText(m.html) : m.text);
            bool match = wantText == got;
            if (!match && wantText.empty() && carries(r, "leaf_parts"))
                for (const auto& alt : otherTextLeaves(r)) match = match || alt == got;
            if (match) {
                ++textsOk;
            } else {
                ok = false;
                size_t d = 0;
                while (d < wantText.size() && d < got.size() && wantText[d] == got[d]) ++d;
                size_t from = d > 60 ? d - 60 : 0;
                why << "  text" << (isHtml ? " (html)" : "") << " differs at " << d << "/" << wantText.size() << "/"
                    << got.size() << ": want [" << wantText.substr(from, 200) << "]\n"
                    << "        got  [" << got.substr(from, 200) << "]\n";
            }
        }
        if (!carrying) continue;
        ++carryingRecords;
        if (ok) {
            ++agreeing;
            continue;
        }
        if (kExceptions.count(rec.message)) {
            stillFailing.insert(rec.message);
        } else {
            unlisted.push_back(rec.message);
        }
        if (verbose) std::cout << "DISAGREE " << rec.message << "\n" << why.str();
    }
    // Agreement over the records not reviewed as upstream errors; the raw rate
    // (every record counted) is printed beside it.
    double rawRate =
        carryingRecords ? 100.0 * static_cast<double>(agreeing) / static_cast<double>(carryingRecords) : 0;
    size_t judged = carryingRecords - stillFailing.size();
    double rate = judged ? 100.0 * static_cast<double>(agreeing) / static_cast<double>(judged) : 0;
    std::cout << "expectations: " << agreeing << "/" << carryingRecords << " records agree (" << rawRate
              << " % raw, " << rate << " % of the " << judged << " not reviewed as upstream errors); subject "
              << subjectsOk << "/" << subjects << ", sender " << sendersOk << "/" << senders << ", text " << textsOk
              << "/" << texts << "\n";
    std::vector<std::string> stale;
    for (const auto& [path, reason] : kExceptions)
        if (!stillFailing.count(path)) stale.push_back(path);
    for (const auto& p : stale) UNSCOPED_INFO("listed exception now agrees, take it off the list: " << p);
    CHECK(stale.empty());
    INFO("disagreements not in the exception list: " << unlisted.size());
    for (const auto& u : unlisted) UNSCOPED_INFO(u);
    CHECK(unlisted.empty());
    CHECK(rate >= 98.0);
    REQUIRE(rawRate >= kMinRawRate);
}

TEST_CASE("sisimai: bounces, non-bounces and RFC 3834 auto-replies", "[corpus]") {
    const std::string dir = kCorpus + "/sisimai-set-of-emails/maildir";
    if (!fs::is_directory(dir)) FAIL("corpus absent: ../shared/corpus not found");
    std::vector<std::string> wrong;
    size_t bounces = 0, autoReplies = 0, nots = 0;
    for (const char* sub : {"bsd", "dos", "mac", "not"}) {
        for (const auto& entry : fs::directory_iterator(dir + "/" + sub)) {
            if (!entry.is_regular_file()) continue;
            std::string name = entry.path().filename().string();
            ParsedMail m = parseMail(readFile(entry.path()));
            Classification c = classifyHygiene(m);
            bool isNot = std::string(sub) == "not";
            bool rfc3834 = name.rfind("rfc3834-", 0) == 0;
            if (isNot) {
                ++nots;
                if (c == Classification::Bounce) wrong.push_back(std::string(sub) + "/" + name + " -> bounce");
            } else if (rfc3834) {
                ++autoReplies;
                if (c != Classification::AutoReply)
                    wrong.push_back(std::string(sub) + "/" + name + " -> " + toString(c));
            } else {
                ++bounces;
                if (c != Classification::Bounce) wrong.push_back(std::string(sub) + "/" + name + " -> " + toString(c));
            }
        }
    }
    std::cout << "sisimai: " << bounces << " bounces, " << autoReplies << " auto-replies, " << nots
              << " non-bounces checked, " << wrong.size() << " misclassified\n";
    for (const auto& w : wrong) UNSCOPED_INFO(w);
    CHECK(wrong.empty());
    CHECK(bounces >= 700);
}

// A bounce is of use only with the address that failed: the share of sisimai's real
// bounces (every MTA and mail provider it knows, legacy formats included) for which
// the classifier gives one, and that address looks like one (local@domain, not the
// bounce's own sender or recipient). Issue 10 aims at 95 %.
TEST_CASE("sisimai: bounces give their failed address", "[corpus]") {
    const std::string dir = kCorpus + "/sisimai-set-of-emails/maildir";
    if (!fs::is_directory(dir)) FAIL("corpus absent: ../shared/corpus not found");
    static const std::regex addressRe(R"([a-z0-9._%+=#&'/!~^{}|$*?-]+@[a-z0-9-]+(\.[a-z0-9-]+)+)");
    size_t bounces = 0, withAddress = 0;
    std::vector<std::string> missing;
    for (const char* sub : {"bsd", "dos", "mac"}) {
        for (const auto& entry : fs::directory_iterator(dir + "/" + sub)) {
            if (!entry.is_regular_file()) continue;
            std::string name = entry.path().filename().string();
            if (name.rfind("rfc3834-", 0) == 0) continue;
            ParsedMail m = parseMail(readFile(entry.path()));
            BounceInfo info;
            if (classifyHygiene(m, &info) != Classification::Bounce) continue;  // the test above reports it
            ++bounces;
            bool good = false;
            for (const auto& r : info.recipients)
                if (std::regex_match(r, addressRe) && r != m.from.email) good = true;
            if (good) ++withAddress;
            else missing.push_back(std::string(sub) + "/" + name);
        }
    }
    double rate = bounces ? 100.0 * static_cast<double>(withAddress) / static_cast<double>(bounces) : 0;
    std::cout << "sisimai: " << withAddress << " of " << bounces << " bounces with their failed address (" << rate
              << " %)\n";
    CHECK(bounces >= 700);
    for (const auto& n : missing) UNSCOPED_INFO("no failed address: " << n);
    CHECK(rate >= 95.0);
}
