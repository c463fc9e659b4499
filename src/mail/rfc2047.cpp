// RFC 2047 decoding and the base64 / quoted-printable decoders.
#include "mail/rfc2047.h"

#include "mail/charset.h"

#include <cstdint>
#include <cstring>

namespace sm::mail {
namespace {

struct B64Table {
    int8_t v[256];
    constexpr B64Table() : v() {
        for (int i = 0; i < 256; ++i) v[i] = -1;
        for (int i = 0; i < 26; ++i) {
            v['A' + i] = static_cast<int8_t>(i);
            v['a' + i] = static_cast<int8_t>(26 + i);
        }
        for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<int8_t>(52 + i);
        v[static_cast<unsigned char>('+')] = 62;
        v[static_cast<unsigned char>('/')] = 63;
        // URL-safe variants appear in the wild.
        v[static_cast<unsigned char>('-')] = 62;
        v[static_cast<unsigned char>('_')] = 63;
    }
};
constexpr B64Table kB64;

inline int8_t b64Value(unsigned char c) { return kB64.v[c]; }

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool isLws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

struct EncodedWord {
    size_t end = 0;  // index just past "?="
    std::string charset;
    char encoding = 0;
    std::string_view text;
};

/// Parses an encoded word starting at s[pos] == '='. Tolerates '?' inside Q
/// text only through the final "?=" search.
bool parseEncodedWord(std::string_view s, size_t pos, EncodedWord& w) {
    if (pos + 1 >= s.size() || s[pos] != '=' || s[pos + 1] != '?') return false;
    size_t q1 = s.find('?', pos + 2);
    if (q1 == std::string_view::npos || q1 == pos + 2 || q1 - pos > 80) return false;
    if (q1 + 2 >= s.size() || s[q1 + 2] != '?') return false;
    char enc = s[q1 + 1];
    if (enc == 'b' || enc == 'B')
        enc = 'B';
    else if (enc == 'q' || enc == 'Q')
        enc = 'Q';
    else
        return false;
    size_t textBegin = q1 + 3;
    size_t close = s.find("?=", textBegin);
    if (close == std::string_view::npos) return false;
    std::string_view cs = s.substr(pos + 2, q1 - pos - 2);
    for (char c : cs)
        if (isLws(c)) return false;
    // Encoded text must not contain whitespace; a word that does is broken,
    // but a space-containing Q word is common enough to accept when short.
    std::string_view text = s.substr(textBegin, close - textBegin);
    for (char c : text)
        if (c == '\r' || c == '\n') return false;
    w.end = close + 2;
    w.charset = std::string(cs);
    w.encoding = enc;
    w.text = text;
    return true;
}

}  // namespace

std::string decodeBase64(std::string_view in) {
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        if (c == '=') {
            // Padding: flush what we have and reset (tolerates concatenated
            // padded chunks).
            acc = 0;
            bits = 0;
            continue;
        }
        int8_t v = b64Value(c);
        if (v < 0) continue;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

namespace {

// The characters kB64 decodes (the base64 alphabet and base64url's '-' and '_')
// in [s, s + n), counted with comparisons instead of the table so that the compiler turns the loop into vector code (GCC does at
// -O2 only when asked): attachments are most of the bytes a mailbox holds, and
// this count was the largest single cost of parsing them (bench_parse: 45 % of
// the parse before, a fifth of that after). Byte-sized sums in blocks of 240
// keep the vector lanes narrow.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
size_t countBase64Chars(const char* s, size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(s);
    size_t total = 0;
    while (n > 0) {
        const size_t k = n < 240 ? n : 240;
        unsigned char sum = 0;
        for (size_t i = 0; i < k; ++i) {
            const unsigned char c = p[i];
            // Few operations, or GCC gives up on vectorising: letters; '-' '/' and the
            // digits are 0x2D-0x39 but for '.'; then '+' and '_'.
            const unsigned char letter = static_cast<unsigned char>((c | 0x20) - 'a') < 26;
            const unsigned char dashSlashDigit = (static_cast<unsigned char>(c - '-') < 13) & (c != '.');
            const unsigned char plusUnderscore = (c == '+') | (c == '_');
            sum += letter | dashSlashDigit | plusUnderscore;
        }
        total += sum;
        p += k;
        n -= k;
    }
    return total;
}

}  // namespace

size_t base64DecodedSize(std::string_view in) {
    // Valid characters between padding runs; each run of n characters gives
    // n * 6 / 8 bytes (what decodeBase64 produces). Runs are cut at '=' with
    // memchr so that the counting loop has no branch.
    size_t total = 0;
    const char* p = in.data();
    const char* e = p + in.size();
    while (p < e) {
        const char* eq = static_cast<const char*>(std::memchr(p, '=', static_cast<size_t>(e - p)));
        const char* stop = eq ? eq : e;
        total += countBase64Chars(p, static_cast<size_t>(stop - p)) * 6 / 8;
        p = eq ? eq + 1 : e;
    }
    return total;
}

std::string decodeQuotedPrintable(std::string_view in, bool header) {
    std::string out;
    out.reserve(in.size());
    size_t n = in.size();
    for (size_t i = 0; i < n; ++i) {
        char c = in[i];
        if (c == '_' && header) {
            out.push_back(' ');
        } else if (c == '=') {
            if (i + 2 < n && hexValue(in[i + 1]) >= 0 && hexValue(in[i + 2]) >= 0) {
                out.push_back(static_cast<char>(hexValue(in[i + 1]) * 16 + hexValue(in[i + 2])));
                i += 2;
            } else if (!header) {
                // Soft line break: "=" followed by optional blanks then EOL.
                size_t j = i + 1;
                while (j < n && (in[j] == ' ' || in[j] == '\t')) ++j;
                if (j < n && (in[j] == '\n' || in[j] == '\r')) {
                    if (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n') ++j;
                    i = j;
                } else if (j >= n) {
                    i = j;
                } else {
                    out.push_back('=');
                }
            } else {
                out.push_back('=');
            }
        } else {
            out.push_back(c);
        }
    }
    return out;
}

namespace {
std::string rawToUtf8(std::string_view s, std::string_view rawCharset) {
    if (rawCharset.empty()) return undeclaredToUtf8(s);
    // UTF-7 bodies come with raw UTF-7 headers (ASCII, yet encoded).
    bool utf7 = s.find('+') != std::string_view::npos && normalizeCharset(rawCharset) == "utf-7";
    if (!utf7 && (isAscii(s) || isValidUtf8(s))) return undeclaredToUtf8(s);
    std::string cs = normalizeCharset(rawCharset);
    // A Latin body charset says little about raw header bytes: read them as
    // undeclared (windows-1252 for Latin-1 text, GB18030 for dense GB2312).
    if (cs == "iso-8859-1" || cs == "windows-1252") return undeclaredToUtf8(s);
    // Raw 8-bit Japanese headers beside a 7-bit ISO-2022-JP body are Shift_JIS.
    if (cs.rfind("iso-2022-jp", 0) == 0 && !isAscii(s)) cs = "cp932";
    std::string out;
    convertToUtf8(s, cs, out);
    return out;
}
}  // namespace

std::string decodeRfc2047(std::string_view s, std::vector<std::string>* defects, std::string_view rawCharset) {
    if (s.find("=?") == std::string_view::npos) return rawToUtf8(s, rawCharset);
    std::string out;
    out.reserve(s.size());
    std::string plain;       // raw text since the last encoded word
    std::string pendBytes;   // decoded bytes of consecutive same-charset words
    std::string pendCharset;
    auto flushPending = [&] {
        if (pendBytes.empty() && pendCharset.empty()) return;
        std::string conv;
        convertToUtf8(pendBytes, pendCharset, conv);
        out += conv;
        pendBytes.clear();
        pendCharset.clear();
    };
    auto flushPlain = [&] {
        if (!plain.empty()) out += rawToUtf8(plain, rawCharset);
        plain.clear();
    };
    bool lastWasWord = false;
    size_t i = 0;
    while (i < s.size()) {
        EncodedWord w;
        if (s[i] == '=' && parseEncodedWord(s, i, w)) {
            std::string bytes = w.encoding == 'B' ? decodeBase64(w.text) : decodeQuotedPrintable(w.text, true);
            std::string cs = normalizeCharset(w.charset);
            bool known = isKnownCharset(cs);
            bool whitespaceOnly = true;
            for (char c : plain)
                if (!isLws(c)) whitespaceOnly = false;
            if (lastWasWord && whitespaceOnly) plain.clear();  // adjacent words: drop the gap
            if (!known) {
                flushPending();
                flushPlain();
                if (defects) defects->push_back("unknown charset in encoded word: " + w.charset);
                out += undeclaredToUtf8(s.substr(i, w.end - i));
                lastWasWord = false;
                i = w.end;
                continue;
            }
            if (!plain.empty()) {
                flushPending();
                flushPlain();
            } else if (!pendCharset.empty() && pendCharset != cs) {
                flushPending();
            }
            pendCharset = cs.empty() ? "us-ascii" : cs;
            pendBytes += bytes;
            lastWasWord = true;
            i = w.end;
            continue;
        }
        plain.push_back(s[i]);
        ++i;
    }
    flushPending();
    flushPlain();
    return out;
}

}  // namespace sm::mail
