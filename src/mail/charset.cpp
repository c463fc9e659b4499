// Charset conversion to UTF-8: POCO tables first, glibc iconv for the rest.
#include "mail/charset.h"

#include <Poco/Encodings.h>
#include <Poco/TextConverter.h>
#include <Poco/TextEncoding.h>
#include <Poco/UTF8Encoding.h>

#include <iconv.h>

#include <cerrno>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace sm::mail {
namespace {

const char32_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};


void appendCp1252(std::string& out, unsigned char c) {
    if (c < 0x80)
        out.push_back(static_cast<char>(c));
    else if (c < 0xA0)
        appendUtf8(out, kCp1252High[c - 0x80]);
    else
        appendUtf8(out, c);
}

std::string cp1252ToUtf8(std::string_view in) {
    std::string out;
    out.reserve(in.size() + in.size() / 4);
    for (unsigned char c : in) appendCp1252(out, c);
    return out;
}

/// Length of the valid UTF-8 sequence at in[i], or 0 when invalid.
size_t utf8SeqLen(std::string_view in, size_t i) {
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    size_t n = in.size();
    unsigned char c = p[i];
    if (c < 0x80) return 1;
    auto cont = [&](size_t k) { return i + k < n && (p[i + k] & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && p[i + 1] < 0xA0) return 0;  // overlong
        if (c == 0xED && p[i + 1] >= 0xA0) return 0;  // surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && p[i + 1] < 0x90) return 0;
        if (c == 0xF4 && p[i + 1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

/// Valid UTF-8 sequences kept; every byte that does not start one is handed
/// to `invalidByte` to write in its place.
std::string keepValidUtf8(std::string_view in, void (*invalidByte)(std::string& out, unsigned char c)) {
    std::string out;
    out.reserve(in.size() + 8);
    for (size_t i = 0; i < in.size();) {
        size_t len = utf8SeqLen(in, i);
        if (len) {
            out.append(in.data() + i, len);
            i += len;
        } else {
            invalidByte(out, static_cast<unsigned char>(in[i]));
            ++i;
        }
    }
    return out;
}

/// Valid UTF-8 sequences kept; stray bytes read as windows-1252 (the usual
/// reason for invalid UTF-8 in mail is mislabelled Windows text).
std::string utf8WithCp1252Repair(std::string_view in) { return keepValidUtf8(in, appendCp1252); }

/// ISO-2022-JP (ASCII, JIS-Roman, JIS X 0208, JIS X 0212, half-width katakana)
/// rewritten as EUC-JP bytes, so that an EUC-JP decoder with the Microsoft
/// extensions (NEC row 13, IBM rows 89-92: what Windows' CP50221 reads) can
/// read it. False on an escape sequence outside that set.
bool iso2022JpToEucJp(std::string_view in, std::string& out) {
    enum Mode { Ascii, Jis0208, Jis0212, Katakana } mode = Ascii;
    out.clear();
    out.reserve(in.size());
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    size_t n = in.size();
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == 0x1B) {
            std::string_view esc = in.substr(i + 1, 3);
            if (esc.substr(0, 2) == "$B" || esc.substr(0, 2) == "$@") {
                mode = Jis0208, i += 3;
            } else if (esc == "$(D") {
                mode = Jis0212, i += 4;
            } else if (esc.substr(0, 2) == "(B" || esc.substr(0, 2) == "(J") {
                mode = Ascii, i += 3;
            } else if (esc.substr(0, 2) == "(I") {
                mode = Katakana, i += 3;
            } else {
                return false;
            }
            continue;
        }
        if (c >= 0x80) return false;
        if ((mode == Jis0208 || mode == Jis0212) && c >= 0x21 && c <= 0x7E && i + 1 < n && p[i + 1] >= 0x21 &&
            p[i + 1] <= 0x7E) {
            if (mode == Jis0212) out.push_back(static_cast<char>(0x8F));
            out.push_back(static_cast<char>(c | 0x80));
            out.push_back(static_cast<char>(p[i + 1] | 0x80));
            i += 2;
            continue;
        }
        if (mode == Katakana && c >= 0x21 && c <= 0x5F) {
            out.push_back(static_cast<char>(0x8E));
            out.push_back(static_cast<char>(c | 0x80));
            ++i;
            continue;
        }
        out.push_back(static_cast<char>(c));
        ++i;
    }
    return true;
}

size_t countReplacements(std::string_view utf8) {
    size_t count = 0;
    for (size_t pos = utf8.find(kReplacement); pos != std::string_view::npos; pos = utf8.find(kReplacement, pos + 3))
        ++count;
    return count;
}

void registerPocoEncodings() {
    static std::once_flag once;
    std::call_once(once, [] { Poco::registerExtraEncodings(); });
}

bool isMultibyteForIconv(const std::string& cs) {
    static const char* const names[] = {"gb18030", "cp950", "big5", "big5-hkscs", "cp932", "cp949",
                                        "euc-jp", "euc-kr", "euc-tw", "iso-2022-jp", "iso-2022-kr",
                                        "iso-2022-cn", "utf-7", "utf-16", "utf-16le", "utf-16be",
                                        "utf-32", "utf-32le", "utf-32be", "hz-gb-2312", "cp936"};
    for (const char* n : names)
        if (cs == n) return true;
    return cs.rfind("iso-2022", 0) == 0;
}

bool iconvToUtf8(std::string_view in, const std::string& charset, std::string& out) {
    iconv_t cd = iconv_open("UTF-8", charset.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return false;
    out.clear();
    out.reserve(in.size() * 2 + 16);
    char buf[8192];
    char* src = const_cast<char*>(in.data());
    size_t srcLeft = in.size();
    while (srcLeft > 0) {
        char* dst = buf;
        size_t dstLeft = sizeof buf;
        size_t r = iconv(cd, &src, &srcLeft, &dst, &dstLeft);
        out.append(buf, static_cast<size_t>(dst - buf));
        if (r == static_cast<size_t>(-1)) {
            if (errno == E2BIG) continue;
            // EILSEQ: skip one byte; EINVAL: truncated sequence at the end.
            out.append("\xEF\xBF\xBD");
            if (errno == EINVAL) break;
            ++src;
            --srcLeft;
        }
    }
    // Flush shift state (ISO-2022-*).
    char* dst = buf;
    size_t dstLeft = sizeof buf;
    iconv(cd, nullptr, nullptr, &dst, &dstLeft);
    out.append(buf, static_cast<size_t>(dst - buf));
    iconv_close(cd);
    if (!isValidUtf8(out)) out = repairUtf8(out);
    return true;
}

}  // namespace

void appendUtf8(std::string& out, std::uint32_t cp) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    unsigned char bytes[4];
    static const Poco::UTF8Encoding utf8;
    int n = utf8.convert(static_cast<int>(cp), bytes, sizeof bytes);
    out.append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(n));
}

bool isAscii(std::string_view in) {
    for (unsigned char c : in)
        if (c >= 0x80) return false;
    return true;
}

bool isValidUtf8(std::string_view in) {
    for (size_t i = 0; i < in.size();) {
        if (static_cast<unsigned char>(in[i]) < 0x80) {
            ++i;
            continue;
        }
        size_t len = utf8SeqLen(in, i);
        if (!len) return false;
        i += len;
    }
    return true;
}

std::string repairUtf8(std::string_view in) {
    return keepValidUtf8(in, [](std::string& out, unsigned char) { out.append(kReplacement); });
}

/// Undeclared or Latin-labelled 8-bit text that is dense GB2312 (EUC-CN)
/// Chinese: every byte >= 0x80 pairs with the next into a GB2312 character
/// (lead A1-A9 symbols or B0-F7 hanzi, trail A1-FE), at least two of them.
/// Western 8-bit text fails it at its first accented letter beside ASCII;
/// text whose 8-bit bytes all lie in C0-FF (the letters of Latin-1, KOI8-R,
/// windows-1251, -1253...: "\xD4\xC5\xD3\xD4" is KOI8-R for a Russian word)
/// is not taken either: GB2312 text of a few characters has bytes below C0.
bool looksLikeGb2312(std::string_view in) {
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    size_t n = in.size(), pairs = 0;
    bool belowC0 = false;
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = p[i];
        if (c < 0x80) continue;
        bool lead = (c >= 0xA1 && c <= 0xA9) || (c >= 0xB0 && c <= 0xF7);
        if (!lead || i + 1 >= n || p[i + 1] < 0xA1 || p[i + 1] > 0xFE) return false;
        belowC0 = belowC0 || c < 0xC0 || p[i + 1] < 0xC0;
        ++pairs;
        ++i;
    }
    return pairs >= 2 && belowC0;
}

std::string undeclaredToUtf8(std::string_view in) {
    if (isAscii(in) || isValidUtf8(in)) return std::string(in);
    std::string out;
    if (looksLikeGb2312(in) && iconvToUtf8(in, "gb18030", out)) return out;
    return utf8WithCp1252Repair(in);
}

std::string normalizeCharset(std::string_view name) {
    std::string cs;
    for (char c : name) {
        if (c == '"' || c == '\'' || c == ' ' || c == '\t') continue;
        cs.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    // RFC 2231 language suffix: charset*lang
    if (auto star = cs.find('*'); star != std::string::npos) cs.resize(star);
    if (cs.rfind("iso8859", 0) == 0 || cs.rfind("iso_8859", 0) == 0) {
        std::string rest = cs.substr(cs[3] == '_' ? 8 : 7);
        if (!rest.empty() && (rest[0] == '-' || rest[0] == '_')) rest.erase(0, 1);
        if (auto colon = rest.find(':'); colon != std::string::npos) rest.resize(colon);
        cs = "iso-8859-" + rest;
    }
    if (cs.rfind("cp125", 0) == 0 && cs.size() == 6) cs = "windows-" + cs.substr(2);
    if (cs.rfind("x-cp125", 0) == 0) cs = "windows-" + cs.substr(4);
    if (cs.rfind("win-125", 0) == 0) cs = "windows-" + cs.substr(4);
    struct Alias { const char* from; const char* to; };
    static const Alias aliases[] = {
        {"utf8", "utf-8"}, {"unicode-1-1-utf-8", "utf-8"}, {"x-unicode20utf8", "utf-8"},
        {"latin1", "iso-8859-1"}, {"l1", "iso-8859-1"}, {"cp819", "iso-8859-1"},
        {"iso-ir-100", "iso-8859-1"}, {"latin-1", "iso-8859-1"},
        {"latin2", "iso-8859-2"}, {"latin9", "iso-8859-15"}, {"latin-9", "iso-8859-15"},
        {"ascii", "us-ascii"}, {"ansi_x3.4-1968", "us-ascii"}, {"us", "us-ascii"},
        {"646", "us-ascii"}, {"iso646-us", "us-ascii"}, {"x-unknown", ""}, {"unknown", ""},
        {"unknown-8bit", ""}, {"x-user-defined", ""}, {"default", ""}, {"none", ""},
        {"8bit", ""}, {"gb2312", "gb18030"}, {"gbk", "gb18030"}, {"x-gbk", "gb18030"},
        {"cp936", "gb18030"}, {"euc-cn", "gb18030"}, {"gb_2312-80", "gb18030"},
        {"x-euc-cn", "gb18030"}, {"csgb2312", "gb18030"}, {"windows-936", "gb18030"},
        {"big5", "cp950"}, {"x-x-big5", "cp950"}, {"csbig5", "cp950"},
        {"shift_jis", "cp932"}, {"shift-jis", "cp932"}, {"sjis", "cp932"},
        {"x-sjis", "cp932"}, {"ms_kanji", "cp932"}, {"csshiftjis", "cp932"},
        {"windows-31j", "cp932"}, {"ks_c_5601-1987", "cp949"}, {"ks_c_5601", "cp949"},
        {"euc-kr", "cp949"}, {"x-euc-jp", "euc-jp"}, {"iso-8859-8-i", "iso-8859-8"},
        {"iso-8859-6-i", "iso-8859-6"}, {"tis-620", "windows-874"}, {"koi8r", "koi8-r"},
        {"koi8u", "koi8-u"}, {"x-mac-roman", "macintosh"}, {"macroman", "macintosh"},
        {"utf-16", "utf-16"}, {"ucs-2", "utf-16"}, {"unicode-1-1-utf-7", "utf-7"},
        {"x-unicode-2-0-utf-7", "utf-7"}, {"csunicode11utf7", "utf-7"}};
    // Looked up by hash: this runs for every encoded word and text part, and a
    // linear scan of the table was a quarter of parsing a plain-text mail.
    static const std::unordered_map<std::string_view, std::string_view> byName = [] {
        std::unordered_map<std::string_view, std::string_view> m;
        for (const auto& a : aliases) m.emplace(a.from, a.to);
        return m;
    }();
    if (auto it = byName.find(cs); it != byName.end()) return std::string(it->second);
    return cs;
}

bool isKnownCharset(std::string_view charsetName) {
    std::string cs = normalizeCharset(charsetName);
    if (cs.empty() || cs == "us-ascii" || cs == "utf-8" || cs == "iso-8859-1" || cs == "windows-1252")
        return true;
    if (!isMultibyteForIconv(cs)) {
        registerPocoEncodings();
        try {
            if (Poco::TextEncoding::find(cs)) return true;
        } catch (...) {
        }
    }
    iconv_t cd = iconv_open("UTF-8", cs.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return false;
    iconv_close(cd);
    return true;
}

bool convertToUtf8(std::string_view in, std::string_view charsetName, std::string& out) {
    std::string cs = normalizeCharset(charsetName);
    if (cs.empty() || cs == "us-ascii") {
        out = undeclaredToUtf8(in);
        return true;
    }
    if (cs == "utf-8") {
        out = isValidUtf8(in) ? std::string(in) : utf8WithCp1252Repair(in);
        return true;
    }
    // Everything but UTF-7/16/32 and ISO-2022 keeps ASCII as ASCII.
    bool asciiSafe = cs.rfind("utf-", 0) != 0 && cs.rfind("iso-2022", 0) != 0 && cs != "hz-gb-2312";
    if (asciiSafe && isAscii(in)) {
        out.assign(in);
        return true;
    }
    if (cs == "iso-8859-1" || cs == "windows-1252") {
        out = cp1252ToUtf8(in);
        return true;
    }
    // ISO-2022-JP is 7-bit: 8-bit bytes under that label are Shift_JIS.
    if (cs.rfind("iso-2022-jp", 0) == 0 && !isAscii(in)) {
        if (isValidUtf8(in)) {
            out.assign(in);
            return true;
        }
        cs = "cp932";
    }
    if (!isMultibyteForIconv(cs)) {
        registerPocoEncodings();
        Poco::TextEncoding* enc = nullptr;
        try {
            enc = Poco::TextEncoding::find(cs);
        } catch (...) {
            enc = nullptr;
        }
        if (enc) {
            Poco::UTF8Encoding utf8;
            Poco::TextConverter conv(*enc, utf8, 0xFFFD);
            out.clear();
            conv.convert(in.data(), static_cast<int>(in.size()), out);
            if (!isValidUtf8(out)) out = repairUtf8(out);
            return true;
        }
    }
    if (iconvToUtf8(in, cs, out)) {
        // Plain ISO-2022-JP lacks the NEC / IBM extensions (circled digits,
        // roman numerals...) that Windows mailers send under that label.
        if ((cs == "iso-2022-jp" || cs == "csiso2022jp") && countReplacements(out) > 0) {
            std::string euc, ms;
            if (iso2022JpToEucJp(in, euc) && iconvToUtf8(euc, "EUC-JP-MS", ms) &&
                countReplacements(ms) < countReplacements(out))
                out.swap(ms);
        }
        return true;
    }
    out = undeclaredToUtf8(in);
    return false;
}

}  // namespace sm::mail
