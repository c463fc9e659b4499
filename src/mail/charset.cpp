// Charset conversion to UTF-8: POCO tables first, glibc iconv for the rest.
#include "mail/charset.h"

#include <Poco/Encodings.h>
#include <Poco/TextConverter.h>
#include <Poco/TextEncoding.h>
#include <Poco/UTF8Encoding.h>

#include <iconv.h>

#include <cerrno>
#include <mutex>

namespace sm::mail {
namespace {

const char32_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

void appendUtf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

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

/// Valid UTF-8 sequences kept; stray bytes read as windows-1252 (the usual
/// reason for invalid UTF-8 in mail is mislabelled Windows text).
std::string utf8WithCp1252Repair(std::string_view in) {
    std::string out;
    out.reserve(in.size() + 8);
    for (size_t i = 0; i < in.size();) {
        size_t len = utf8SeqLen(in, i);
        if (len) {
            out.append(in.data() + i, len);
            i += len;
        } else {
            appendCp1252(out, static_cast<unsigned char>(in[i]));
            ++i;
        }
    }
    return out;
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
    std::string out;
    out.reserve(in.size() + 8);
    for (size_t i = 0; i < in.size();) {
        size_t len = utf8SeqLen(in, i);
        if (len) {
            out.append(in.data() + i, len);
            i += len;
        } else {
            out.append("\xEF\xBF\xBD");
            ++i;
        }
    }
    return out;
}

std::string undeclaredToUtf8(std::string_view in) {
    if (isAscii(in) || isValidUtf8(in)) return std::string(in);
    return cp1252ToUtf8(in);
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
    for (const auto& a : aliases)
        if (cs == a.from) return a.to;
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
    if (iconvToUtf8(in, cs, out)) return true;
    out = undeclaredToUtf8(in);
    return false;
}

}  // namespace sm::mail
