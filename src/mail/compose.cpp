// The composer (see compose.h). What is mimetic's and what is ours, and why:
//
// * The MIME structure -- the text/plain part, or the multipart/alternative
//   entity with its text/plain and text/html parts, their Content-Type and
//   Content-Transfer-Encoding fields, the boundary lines -- is a mimetic
//   MimeEntity tree serialised by mimetic (it writes CRLF there).
// * The message header block (From ... MIME-Version) is written here, because
//   mimetic's header writer cannot be made safe: Field::write folds every value
//   at 76 columns with a naive algorithm that replaces the blank it breaks at by
//   CRLF+TAB and counts across CRLFs already in the value, so a value we fold
//   ourselves gets an empty line (the end of the header block), and a value it
//   folds itself changes its spaces into tabs and keeps words longer than a line.
//   It also writes UTF-8 raw and adds no Date, Message-ID or MIME-Version.
// * The bodies are encoded here: mimetic's QP::Encoder ends soft line breaks
//   with a bare LF, and (Debian's 0.9.8, default text mode) writes CRLF line
//   breaks as "=0D=0A" and every space as "=20". Our encoder writes CRLF only
//   and is a single pass over the text into a presized buffer.
// * RFC 2047 encoding of header text is ours (mimetic has none).
// Cost: about 10-20 microseconds of CPU for a typical two-part mail, roughly
// 40 % of it in mimetic (field lookups, ostream serialisation).
#include "mail/compose.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <Poco/DateTimeFormatter.h>
#include <Poco/Timestamp.h>
#include <mimetic/mimetic.h>

namespace sm::mail {
namespace {

constexpr std::size_t kFoldAt = 78;        // preferred header line length (RFC 5322 2.1.1)
constexpr std::size_t kMaxLine = 998;      // hard limit
constexpr std::size_t kMaxWord = 75;       // RFC 2047 encoded-word limit
constexpr std::size_t kMaxNameWord = 72;   // display names: "From: " + word fits in 78
constexpr std::size_t kMaxPlainName = 64;  // longer ASCII names are encoded (foldable)
constexpr std::size_t kMaxMsgId = 250;
constexpr std::size_t kMaxReferences = 20;

// ---- UTF-8 ---------------------------------------------------------------

/// Length of the valid UTF-8 sequence starting at s[i] (which is >= 0x80), and
/// its code point; 0 when the bytes there are not valid UTF-8.
std::size_t utf8Sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const unsigned char t = b(k);
        if (t < (k == 1 ? lo : 0x80) || t > (k == 1 ? hi : 0xBF)) return 0;
        cp = (cp << 6) | (t & 0x3F);
    }
    return len;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

/// Header text as one line: controls (C0, DEL, C1, U+2028/9) and whitespace
/// runs become one space, ends trimmed, invalid UTF-8 becomes U+FFFD.
std::string cleanHeaderText(std::string_view in) {
    // Fast path: printable ASCII with single inner spaces needs no change.
    bool clean = !in.empty() && in.front() != ' ' && in.back() != ' ';
    for (std::size_t i = 0; clean && i < in.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(in[i]);
        clean = (c > 0x20 && c < 0x7F) || (c == ' ' && in[i + 1] != ' ');
    }
    if (clean) return std::string(in);

    std::string out;
    out.reserve(in.size());
    bool pendingSpace = false;
    const auto put = [&](std::string_view bytes) {
        if (pendingSpace) {
            out += ' ';
            pendingSpace = false;
        }
        out.append(bytes.data(), bytes.size());
    };
    for (std::size_t i = 0; i < in.size();) {
        const unsigned char c = static_cast<unsigned char>(in[i]);
        if (c < 0x80) {
            if (c <= 0x20 || c == 0x7F) {
                pendingSpace = !out.empty();
            } else {
                if (pendingSpace) {
                    out += ' ';
                    pendingSpace = false;
                }
                out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        std::uint32_t cp = 0;
        const std::size_t len = utf8Sequence(in, i, cp);
        if (len == 0) {
            put(kReplacement);
            ++i;
        } else {
            if (cp <= 0x9F || cp == 0x2028 || cp == 0x2029)
                pendingSpace = !out.empty();
            else
                put(in.substr(i, len));
            i += len;
        }
    }
    return out;
}

/// Body text with invalid UTF-8 replaced by U+FFFD (returned unchanged when valid).
std::string validUtf8(std::string_view in) {
    std::size_t i = 0;
    std::uint32_t cp = 0;
    while (i < in.size()) {
        if (static_cast<unsigned char>(in[i]) < 0x80) {
            ++i;
        } else if (std::size_t len = utf8Sequence(in, i, cp)) {
            i += len;
        } else {
            break;
        }
    }
    if (i == in.size()) return std::string(in);
    std::string out(in.substr(0, i));
    while (i < in.size()) {
        std::size_t len = 1;
        if (static_cast<unsigned char>(in[i]) < 0x80) {
            out += in[i];
        } else if ((len = utf8Sequence(in, i, cp)) != 0) {
            out.append(in.data() + i, len);
        } else {
            out += kReplacement;
            len = 1;
        }
        i += len;
    }
    return out;
}

// ---- RFC 2047 ------------------------------------------------------------

/// Characters Q-encoding may leave literal in every context, phrases included
/// (RFC 2047 5(3)).
bool qLiteral(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
           c == '*' || c == '+' || c == '-' || c == '/';
}

const char kHex[] = "0123456789ABCDEF";

/// Bytes quoted-printable writes as themselves anywhere on a line: 33..126 but '='.
struct QpSafeBytes {
    bool byte[256];
    constexpr QpSafeBytes() : byte{} {
        for (int c = 33; c <= 126; ++c) byte[c] = c != '=';
    }
};
constexpr QpSafeBytes kQpSafe;

void appendBase64(std::string& out, std::string_view in) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::size_t i = 0;
    const auto u = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = (u(i) << 16) | (u(i + 1) << 8) | u(i + 2);
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += tbl[(v >> 6) & 63];
        out += tbl[v & 63];
    }
    if (in.size() - i == 1) {
        const std::uint32_t v = u(i) << 16;
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += "==";
    } else if (in.size() - i == 2) {
        const std::uint32_t v = (u(i) << 16) | (u(i + 1) << 8);
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += tbl[(v >> 6) & 63];
        out += '=';
    }
}

std::size_t charLength(std::string_view s, std::size_t i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return i + len <= s.size() ? len : s.size() - i;
}

/// `text` (valid UTF-8, one line) as encoded-words separated by single spaces;
/// the first word is at most firstMax characters, the others at most kMaxWord
/// (or restMax). Words end only on character boundaries.
std::string encodeWords(std::string_view text, std::size_t firstMax, std::size_t restMax) {
    std::size_t qLen = 0;
    for (unsigned char c : text) qLen += (qLiteral(c) || c == ' ') ? 1 : 3;
    const bool useB = (text.size() + 2) / 3 * 4 < qLen;
    const std::string_view open = useB ? "=?UTF-8?B?" : "=?UTF-8?Q?";
    constexpr std::size_t overhead = 12;  // "=?UTF-8?X?" + "?="

    std::string out;
    out.reserve(qLen + qLen / 4 + 16);
    std::size_t limit = firstMax - overhead;  // payload characters of the current word
    std::size_t wordStart = 0;                // B: byte offset where the current word starts
    std::size_t payload = 0;                  // Q: payload characters so far
    bool wordOpen = false;
    const auto closeWord = [&](std::size_t end) {
        if (useB) appendBase64(out, text.substr(wordStart, end - wordStart));
        out += "?=";
        wordOpen = false;
        limit = restMax - overhead;
    };
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t len = charLength(text, i);
        std::size_t cost = 0;
        if (useB) {
            cost = (i + len - wordStart + 2) / 3 * 4;  // payload if this char joins the word
        } else {
            for (std::size_t k = 0; k < len; ++k) {
                const unsigned char c = static_cast<unsigned char>(text[i + k]);
                cost += (qLiteral(c) || c == ' ') ? 1 : 3;
            }
            cost += payload;
        }
        if (wordOpen && cost > limit) {
            closeWord(i);
            out += ' ';
        }
        if (!wordOpen) {
            out += open;
            wordOpen = true;
            wordStart = i;
            payload = 0;
        }
        if (!useB) {
            for (std::size_t k = 0; k < len; ++k) {
                const unsigned char c = static_cast<unsigned char>(text[i + k]);
                if (c == ' ') {
                    out += '_';
                    payload += 1;
                } else if (qLiteral(c)) {
                    out += static_cast<char>(c);
                    payload += 1;
                } else {
                    out += '=';
                    out += kHex[c >> 4];
                    out += kHex[c & 15];
                    payload += 3;
                }
            }
        }
        i += len;
    }
    if (wordOpen) closeWord(text.size());
    return out;
}

bool wordNeedsEncoding(std::string_view w) {
    if (w.size() > kMaxWord || w.find("=?") != std::string_view::npos) return true;
    for (unsigned char c : w)
        if (c >= 0x80) return true;
    return false;
}

/// Unstructured text (already cleaned) for a header whose value starts at
/// `column`: words from the first to the last one that needs it are encoded.
std::string encodeUnstructured(const std::string& clean, std::size_t column) {
    std::size_t first = std::string::npos, last = 0;  // byte ranges of the words to encode
    for (std::size_t i = 0; i < clean.size();) {
        std::size_t j = clean.find(' ', i);
        if (j == std::string::npos) j = clean.size();
        if (wordNeedsEncoding(std::string_view(clean).substr(i, j - i))) {
            if (first == std::string::npos) first = i;
            last = j;
        }
        i = j + 1;
    }
    if (first == std::string::npos) return clean;

    std::string out = clean.substr(0, first);  // plain prefix, with its trailing space
    const std::size_t col = column + out.size();
    const std::size_t firstMax = kFoldAt > col && kFoldAt - col >= 24 ? std::min(kMaxWord, kFoldAt - col) : kMaxWord;
    out += encodeWords(std::string_view(clean).substr(first, last - first), firstMax, kMaxWord);
    out.append(clean, last, std::string::npos);  // plain suffix, with its leading space
    return out;
}

// ---- addresses, ids, folding ------------------------------------------------

bool isAtext(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool plausibleMsgId(std::string_view id) {
    if (id.size() < 5 || id.size() > kMaxMsgId || id.front() != '<' || id.back() != '>') return false;
    bool at = false;
    for (std::size_t i = 1; i + 1 < id.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(id[i]);
        if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>') return false;
        at = at || c == '@';
    }
    return at;
}

/// The plausible message ids in `s` (split on whitespace), appended to `out`.
void collectMsgIds(std::string_view s, std::vector<std::string>& out) {
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && static_cast<unsigned char>(s[i]) <= 0x20) ++i;
        std::size_t j = i;
        while (j < s.size() && static_cast<unsigned char>(s[j]) > 0x20) ++j;
        if (j > i && plausibleMsgId(s.substr(i, j - i))) out.emplace_back(s.substr(i, j - i));
        i = j;
    }
}

/// Appends "Name: value\r\n", folded before a blank so that lines stay within
/// 78 characters where the words allow. Structured values are not broken
/// inside a quoted string. The value holds no CR/LF (callers clean it).
void appendField(std::string& out, std::string_view name, std::string_view value, bool structured = false) {
    out.append(name.data(), name.size());
    out += ':';
    std::size_t lineLen = name.size() + 1;
    bool firstToken = true;
    std::size_t i = 0;
    while (i < value.size() && value[i] == ' ') ++i;
    while (i < value.size()) {
        std::size_t j = i;
        bool quoted = false;
        while (j < value.size()) {
            const char c = value[j];
            if (quoted) {
                if (c == '\\' && j + 1 < value.size()) {
                    j += 2;
                    continue;
                }
                if (c == '"') quoted = false;
            } else if (c == ' ') {
                break;
            } else if (c == '"' && structured) {
                quoted = true;
            }
            ++j;
        }
        const std::size_t tokenLen = j - i;
        if (!firstToken && lineLen + 1 + tokenLen > kFoldAt) {
            out += "\r\n";
            lineLen = 0;
        }
        out += ' ';
        out.append(value.data() + i, tokenLen);
        lineLen += 1 + tokenLen;
        if (lineLen > kMaxLine) throw std::logic_error("compose: header " + std::string(name) + " cannot be folded");
        firstToken = false;
        i = j;
        while (i < value.size() && value[i] == ' ') ++i;
    }
    out += "\r\n";
}

std::string joinAddresses(const std::vector<Address>& list) {
    std::string out;
    for (const Address& a : list) {
        if (!out.empty()) out += ", ";
        out += formatAddress(a);
    }
    return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

void checkExtraHeaderName(const std::string& name) {
    if (name.empty() || name.size() > 76)
        throw std::invalid_argument("compose: extra header name empty or too long");
    for (unsigned char c : name)
        if (c < 33 || c > 126 || c == ':')
            throw std::invalid_argument("compose: invalid character in extra header name");
    static const char* const reserved[] = {
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to", "references",
        "mime-version", "auto-submitted", "sender", "return-path"};
    for (const char* r : reserved)
        if (equalsIgnoreCase(name, r))
            throw std::invalid_argument("compose: extra header " + name + " is written by the composer");
    if (name.size() >= 8 && equalsIgnoreCase(std::string_view(name).substr(0, 8), "content-"))
        throw std::invalid_argument("compose: extra header " + name + " would clash with the MIME structure");
}

// ---- randomness --------------------------------------------------------------

void fillRandom(unsigned char* buf, std::size_t len) {
    std::size_t got = 0;
    while (got < len) {
        const ssize_t n = ::getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        got += static_cast<std::size_t>(n);
    }
}

/// 128 random bits as 26 lowercase base32 characters.
std::string randomToken() {
    unsigned char rnd[17] = {};
    fillRandom(rnd, 16);
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::string out;
    out.reserve(26);
    std::uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 16; ++i) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            out += alphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
    return out;
}

std::string base36(std::uint64_t v) {
    std::string out;
    do {
        out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36]);
        v /= 36;
    } while (v);
    return out;
}

void checkDomain(const std::string& domain) {
    bool ok = !domain.empty() && domain.size() <= 200 && domain.front() != '.' && domain.back() != '.' &&
              domain.find("..") == std::string::npos;
    for (unsigned char c : domain)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-');
    if (!ok) throw std::invalid_argument("invalid Message-ID domain");
}

std::string makeMessageId(const std::string& domain, const std::string& token) {
    const auto micros = static_cast<std::uint64_t>(Poco::Timestamp().epochMicroseconds());
    return "<" + base36(micros) + "." + token + "@" + domain + ">";
}

// ---- bodies ----------------------------------------------------------------------

void setTextPart(mimetic::MimeEntity& entity, const char* subtype, std::string_view utf8) {
    mimetic::ContentType& type = entity.header().contentType();  // each lookup scans the fields
    type.set("text", subtype);
    type.param("charset", "UTF-8");
    entity.header().contentTransferEncoding().set("quoted-printable");
    entity.body().set(encodeQuotedPrintable(validUtf8(utf8)));
}

}  // namespace

// ---- public ---------------------------------------------------------------------

void validateEmail(const std::string& email) {
    if (email.empty() || email.size() > 254) throw std::invalid_argument("invalid email address (length)");
    std::size_t at = std::string::npos;
    for (std::size_t i = 0; i < email.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(email[i]);
        if (c <= 0x20 || c >= 0x7F || std::string_view("<>,;:\"()[]\\").find(static_cast<char>(c)) != std::string_view::npos)
            throw std::invalid_argument("invalid character in email address");
        if (c == '@') {
            if (at != std::string::npos) throw std::invalid_argument("invalid email address (two '@')");
            at = i;
        }
    }
    if (at == std::string::npos || at == 0 || at + 1 == email.size())
        throw std::invalid_argument("invalid email address (needs local@domain)");
}

std::string formatAddress(const Address& address) {
    validateEmail(address.email);
    const std::string name = cleanHeaderText(address.name);
    if (name.empty()) return address.email;

    bool ascii = name.size() <= kMaxPlainName, atoms = true;
    for (unsigned char c : name) {
        if (c >= 0x80) ascii = false;
        if (c != ' ' && !isAtext(c)) atoms = false;
    }
    std::string out;
    if (!ascii) {
        out = encodeWords(name, kMaxNameWord, kMaxNameWord);
    } else if (atoms && name.find("=?") == std::string::npos) {
        out = name;
    } else {
        out.reserve(name.size() + 8);
        out += '"';
        for (char c : name) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += " <";
    out += address.email;
    out += '>';
    return out;
}

std::string encodeHeaderText(const std::string& utf8) { return encodeUnstructured(cleanHeaderText(utf8), 0); }

std::string newMessageId(const std::string& domain) {
    checkDomain(domain);
    return makeMessageId(domain, randomToken());
}

std::string encodeQuotedPrintable(std::string_view t) {
    // Written through a pointer into a buffer sized for the worst case (every
    // byte "=XX", a soft break per 73 output chars): this runs for every mail.
    const std::size_t n = t.size();
    std::string out(n * 3 + (n / 24 + 2) * 3 + 3, '\0');
    char* o = out.data();
    std::size_t col = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(t[i]);
        // Most bytes: printable, room on the line, not a leading '.'; copied as the
        // general case below would (one table lookup instead of its tests).
        if (kQpSafe.byte[c] && col < 75 && (col != 0 || c != '.')) {
            *o++ = static_cast<char>(c);
            ++col;
            continue;
        }
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && t[i + 1] == '\n') ++i;
            *o++ = '\r';
            *o++ = '\n';
            col = 0;
            continue;
        }
        const bool lineEnd = i + 1 == n || t[i + 1] == '\r' || t[i + 1] == '\n';
        bool literal = kQpSafe.byte[c] || (c == ' ' && !lineEnd);
        if (col + (literal ? 1 : 3) > 75) {  // 75 + the '=' of the soft break = 76
            *o++ = '=';
            *o++ = '\r';
            *o++ = '\n';
            col = 0;
        }
        if (col == 0 && c == '.') literal = false;  // no line starting with '.' (naive SMTP)
        if (literal) {
            *o++ = static_cast<char>(c);
            col += 1;
        } else {
            *o++ = '=';
            *o++ = kHex[c >> 4];
            *o++ = kHex[c & 15];
            col += 3;
        }
    }
    if (n > 0 && t[n - 1] != '\n' && t[n - 1] != '\r') {
        *o++ = '=';
        *o++ = '\r';
        *o++ = '\n';
    }
    out.resize(static_cast<std::size_t>(o - out.data()));
    return out;
}

ComposedMail compose(const OutgoingMessage& m) {
    if (m.to.empty()) throw std::invalid_argument("compose: no To recipient");
    checkDomain(m.messageIdDomain);
    for (const auto& [name, value] : m.extraHeaders) checkExtraHeaderName(name);

    const std::string token = randomToken();
    ComposedMail result;
    result.messageId = makeMessageId(m.messageIdDomain, token);

    std::string head;
    head.reserve(1024);
    appendField(head, "From", formatAddress(m.from), true);
    appendField(head, "To", joinAddresses(m.to), true);
    if (!m.cc.empty()) appendField(head, "Cc", joinAddresses(m.cc), true);
    appendField(head, "Subject", encodeUnstructured(cleanHeaderText(m.subject), 9));
    appendField(head, "Date", Poco::DateTimeFormatter::format(m.date, "%w, %d %b %Y %H:%M:%S +0000"));
    appendField(head, "Message-ID", result.messageId);

    std::vector<std::string> parent, refs;
    collectMsgIds(m.inReplyTo, parent);
    for (const std::string& r : m.references) collectMsgIds(r, refs);
    if (refs.empty() && !parent.empty()) refs.push_back(parent.front());
    if (refs.size() > kMaxReferences) {  // keep the thread's root and the latest ones
        refs.erase(refs.begin() + 1, refs.end() - static_cast<std::ptrdiff_t>(kMaxReferences - 1));
    }
    if (!parent.empty()) appendField(head, "In-Reply-To", parent.front(), true);
    if (!refs.empty()) {
        std::string joined;
        for (const std::string& r : refs) {
            if (!joined.empty()) joined += ' ';
            joined += r;
        }
        appendField(head, "References", joined, true);
    }
    const std::string autoSubmitted = cleanHeaderText(m.autoSubmitted);
    if (!autoSubmitted.empty()) appendField(head, "Auto-Submitted", encodeUnstructured(autoSubmitted, 16));
    // Every mail of ours: Exchange/Outlook send no out-of-office or read receipt back.
    appendField(head, "X-Auto-Response-Suppress", "All");
    for (const auto& [name, value] : m.extraHeaders)
        appendField(head, name, encodeUnstructured(cleanHeaderText(value), name.size() + 2));
    head += "MIME-Version: 1.0\r\n";

    mimetic::MimeEntity root;
    if (m.html.empty()) {
        setTextPart(root, "plain", m.text);
    } else {
        mimetic::ContentType& type = root.header().contentType();
        type.set("multipart", "alternative");
        // "=_" cannot occur in quoted-printable text, so the boundary cannot either.
        type.param("boundary", "=_sm_" + token.substr(0, 20));
        auto text = std::make_unique<mimetic::MimeEntity>();
        setTextPart(*text, "plain", m.text);
        root.body().parts().push_back(text.release());
        auto html = std::make_unique<mimetic::MimeEntity>();
        setTextPart(*html, "html", m.html);
        root.body().parts().push_back(html.release());
    }
    std::ostringstream os;
    os << head << root;
    result.bytes = std::move(os).str();
    return result;
}

}  // namespace sm::mail
