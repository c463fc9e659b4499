// parseMail: pre-scan (limits), mimetic (structure), our decoders (content).
#include "mail/mime_parser.h"
#include "mail/ascii.h"

#include "mail/charset.h"
#include "mail/html_text.h"
#include "mail/unicode_text.h"
#include "mail/rfc2047.h"
#include "mail/rfc2231.h"

#include <mimetic/mimetic.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace sm::mail {

const std::string* ParsedMail::header(const std::string& name) const {
    for (const auto& [n, v] : headers)
        if (n.size() == name.size() &&
            std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
                return (a >= 'A' && a <= 'Z' ? a + 32 : a) == (b >= 'A' && b <= 'Z' ? b + 32 : b);
            }))
            return &v;
    return nullptr;
}

namespace {

// ---------------------------------------------------------------- helpers

char lowerc(char c) { return asciiLower(c); }

bool istartsWith(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
        if (lowerc(s[i]) != lowerc(prefix[i])) return false;
    return true;
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && istartsWith(a, b); }

std::string lower(std::string_view s) { return asciiLower(s); }
std::string_view trim(std::string_view s) { return trimWhitespace(s); }

/// CRLF and bare CR to LF.
std::string normalizeNewlines(std::string s) {
    if (s.find('\r') == std::string::npos) return s;
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out.push_back('\n');
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

void addDefect(std::vector<std::string>& defects, std::string d) {
    if (std::find(defects.begin(), defects.end(), d) == defects.end()) defects.push_back(std::move(d));
}

// ---------------------------------------------------------------- pre-scan

/// A forward iterator over a buffer: selects mimetic's line-based parser,
/// which finds boundaries only at line starts and handles boundaries of
/// outer levels. Its random-access parser is faster but matches a boundary
/// anywhere in a line and loses the rest of a part whose boundary is missing;
/// it is used only when the pre-scan found a clean structure.
struct LineIterator {
    using iterator_category = std::forward_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;
    const char* p = nullptr;
    reference operator*() const { return *p; }
    LineIterator& operator++() {
        ++p;
        return *this;
    }
    LineIterator operator++(int) {
        LineIterator t = *this;
        ++p;
        return t;
    }
    bool operator==(const LineIterator& o) const { return p == o.p; }
    bool operator!=(const LineIterator& o) const { return p != o.p; }
};

struct PreScan {
    size_t start = 0;                 ///< past a leading mbox "From " line
    size_t cut = 0;                   ///< parse [start, cut)
    struct Edit {
        size_t begin, end;   ///< [begin, end) of raw replaced by `insert`
        std::string insert;
    };
    std::vector<Edit> edits;
    size_t topHeaderEnd = 0;          ///< offset of the top-level body
    bool topMultipartNoBoundary = false;
    bool cleanStructure = false;      ///< safe for mimetic's random-access parser
    std::vector<std::string> defects;
};

/// Line end at or after pos: returns the end of the line content and sets
/// next to the start of the following line.
size_t lineEnd(std::string_view s, size_t pos, size_t& next) {
    const char* b = s.data() + pos;
    const char* e = s.data() + s.size();
    const char* p = b;
    while (p < e && *p != '\n' && *p != '\r') ++p;
    size_t end = static_cast<size_t>(p - s.data());
    if (p == e) {
        next = s.size();
    } else if (*p == '\r' && p + 1 < e && p[1] == '\n') {
        next = end + 2;
    } else {
        next = end + 1;
    }
    return end;
}

/// The field name of a header line (without trailing blanks), or empty when
/// the line is not a header field.
std::string_view fieldName(std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return {};
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    for (char c : name) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 32 || u >= 127) return {};
    }
    return name;
}

PreScan preScan(std::string_view raw, const ParseLimits& lim) {
    PreScan ps;
    ps.cut = raw.size();
    size_t pos = 0;
    // mbox separator lines at the top ("From sender date")
    while (raw.compare(pos, 5, "From ") == 0 || raw.compare(pos, 6, ">From ") == 0) {
        size_t next;
        lineEnd(raw, pos, next);
        pos = next;
    }
    ps.start = pos;

    bool hasBareCr = false;
    {
        size_t p = raw.find('\r');
        while (p != std::string_view::npos) {
            if (p + 1 >= raw.size() || raw[p + 1] != '\n') {
                hasBareCr = true;
                break;
            }
            p = raw.find('\r', p + 2);
        }
    }
    if (hasBareCr) ps.defects.push_back("bare CR line endings");

    struct Level {
        std::string boundary;  // "--b"; empty for message/rfc822
    };
    std::vector<Level> stack;
    size_t parts = 1;
    bool inHeader = true;
    bool topLevelHeader = true;
    // Current header block state
    size_t blockBytes = 0, fieldLen = 0;
    bool inCt = false, fieldDropped = false;
    std::string ct;
    bool noteFieldTrunc = false, noteBlockTrunc = false, noteInvalidLine = false, haveField = false,
         encodedBody = false;

    auto startHeader = [&] {
        inHeader = true;
        blockBytes = 0;
        fieldLen = 0;
        inCt = false;
        fieldDropped = false;
        haveField = false;
        encodedBody = false;
        ct.clear();
    };
    std::map<std::string, size_t> boundaryLines;  // "--b" -> lines matched at line start
    bool clean = true;
    // Index in `stack` of the boundary that starts `line`, or npos.
    auto matchBoundary = [&](std::string_view line) -> size_t {
        if (line.size() < 2 || line[0] != '-' || line[1] != '-') return std::string::npos;
        for (size_t k = stack.size(); k-- > 0;) {
            const std::string& b = stack[k].boundary;
            if (!b.empty() && line.compare(0, b.size(), b) == 0) return k;
        }
        return std::string::npos;
    };
    auto cutHere = [&](size_t at, const std::string& why) {
        if (lim.rejectHostile) throw MailRejected(why);
        ps.cut = at;
        ps.defects.push_back(why + "; the rest of the mail is ignored");
    };

    while (pos < raw.size()) {
        if (inHeader) {
            size_t next;
            size_t end = lineEnd(raw, pos, next);
            size_t len = end - pos;
            if (len == 0) {
                // End of a header block.
                ParamHeader h = parseParamHeader(ct);
                bool top = topLevelHeader;
                topLevelHeader = false;
                if (top) ps.topHeaderEnd = next;
                inHeader = false;
                if (h.value.rfind("multipart/", 0) == 0) {
                    std::string b = h.param("boundary");
                    if (b.empty()) {
                        clean = false;
                        ps.defects.push_back("multipart without boundary parameter");
                        if (top) ps.topMultipartNoBoundary = true;
                    } else {
                        stack.push_back({"--" + b});
                        if (static_cast<int>(stack.size()) > lim.maxDepth) {
                            cutHere(pos, "MIME nesting deeper than " + std::to_string(lim.maxDepth) + " levels");
                            break;
                        }
                    }
                } else if ((h.value == "message/rfc822" || h.value == "message/global") && !encodedBody) {
                    stack.push_back({std::string()});
                    if (static_cast<int>(stack.size()) > lim.maxDepth) {
                        cutHere(pos, "MIME nesting deeper than " + std::to_string(lim.maxDepth) + " levels");
                        break;
                    }
                    if (++parts > lim.maxParts) {
                        cutHere(pos, "more than " + std::to_string(lim.maxParts) + " MIME parts");
                        break;
                    }
                    pos = next;
                    startHeader();
                    continue;
                }
                pos = next;
                continue;
            }
            if (raw[pos] == '-' && matchBoundary(raw.substr(pos, len)) != std::string::npos) {
                // A boundary where a part's header should be: the part is empty.
                // mimetic would read the boundary as a header line; give it the
                // empty line that ends the header.
                ps.edits.push_back({pos, pos, "\n"});
                inHeader = false;
                topLevelHeader = false;
                continue;
            }
            bool continuation = raw[pos] == ' ' || raw[pos] == '\t';
            if (continuation && !haveField) {
                // A fold before any field: nothing to continue.
                ps.edits.push_back({pos, next, {}});
                pos = next;
                continue;
            }
            if (!continuation) {
                std::string_view line = raw.substr(pos, len);
                std::string_view name = fieldName(line);
                if (name.empty() && inCt && istartsWith(trim(line), "boundary")) {
                    // "boundary=..." on an unfolded line after Content-Type: a
                    // fold whose blank was lost. Give it the blank back.
                    ps.edits.push_back({pos, pos, " "});
                    std::string_view v = trim(line);
                    ct.push_back(' ');
                    ct.append(v);
                    fieldLen += len;
                    blockBytes += next - pos;
                    pos = next;
                    continue;
                }
                if (name.empty()) {
                    // Not a header field: dropped, as RFC 5322 ends a header only at
                    // an empty line (mimetic would start the body here instead).
                    ps.edits.push_back({pos, next, {}});
                    if (!noteInvalidLine) ps.defects.push_back("invalid header line ignored");
                    noteInvalidLine = true;
                    haveField = false;
                    pos = next;
                    continue;
                }
                haveField = true;
                fieldLen = 0;
                fieldDropped = false;
                inCt = iequals(name, "content-type");
                if (inCt) ct.clear();
            }
            fieldLen += len;
            bool truncate = fieldLen > lim.maxHeaderField;
            size_t keep = len;  // bytes of this line that stay
            if (truncate) keep = fieldDropped ? 0 : lim.maxHeaderField - (fieldLen - len);
            size_t kept = keep + (keep ? next - end : 0);
            if (blockBytes + kept > lim.maxHeaderBlock) {
                if (lim.rejectHostile)
                    throw MailRejected("header block larger than " + std::to_string(lim.maxHeaderBlock) + " bytes");
                ps.edits.push_back({pos, next, {}});
                fieldDropped = true;
                if (!noteBlockTrunc) ps.defects.push_back("header block too large: excess lines dropped");
                noteBlockTrunc = true;
            } else if (truncate) {
                if (lim.rejectHostile)
                    throw MailRejected("header field longer than " + std::to_string(lim.maxHeaderField) + " bytes");
                blockBytes += kept;
                // Keep the first maxHeaderField bytes of the field; a continuation
                // line goes whole (an emptied line would end the header).
                ps.edits.push_back({keep ? pos + keep : pos, keep ? end : next, {}});
                fieldDropped = true;
                if (!noteFieldTrunc) ps.defects.push_back("header field too long: truncated");
                noteFieldTrunc = true;
                if (inCt) ct.append(raw.substr(pos, keep));
            } else if (inCt) {
                std::string_view line = raw.substr(pos, len);
                if (!continuation) line.remove_prefix(line.find(':') + 1);
                while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
                ct.push_back(' ');
                ct.append(line);
            }
            if (!continuation) {
                std::string_view line = raw.substr(pos, len);
                if (istartsWith(line, "content-transfer-encoding:")) {
                    std::string v = lower(trim(line.substr(26)));
                    encodedBody = v == "base64" || v == "quoted-printable";
                }
            }
            pos = next;
            continue;
        }
        // Body: look for the next line starting with "--".
        bool anyBoundary = false;
        for (const auto& l : stack)
            if (!l.boundary.empty()) anyBoundary = true;
        if (!anyBoundary) break;
        size_t cand;
        if (pos == 0 || raw[pos - 1] == '\n' || raw[pos - 1] == '\r') {
            cand = raw.compare(pos, 2, "--") == 0 ? pos : std::string_view::npos;
        } else {
            cand = std::string_view::npos;
        }
        if (cand == std::string_view::npos) {
            size_t a = raw.find("\n--", pos);
            size_t b = hasBareCr ? raw.find("\r--", pos) : std::string_view::npos;
            size_t m = std::min(a, b);
            if (m == std::string_view::npos) break;
            cand = m + 1;
        }
        size_t next;
        size_t end = lineEnd(raw, cand, next);
        std::string_view line = raw.substr(cand, end - cand);
        pos = next;
        size_t k = matchBoundary(line);
        if (k != std::string::npos) {
            const std::string& b = stack[k].boundary;
            ++boundaryLines[b];
            bool closing = line.compare(b.size(), 2, "--") == 0;
            // mimetic's random-access parser wants nothing after the boundary.
            if (line.size() != b.size() + (closing ? 2 : 0)) clean = false;
            // An inner level left without its closing boundary.
            for (size_t j = k + 1; j < stack.size(); ++j)
                if (!stack[j].boundary.empty()) clean = false;
            stack.resize(closing ? k : k + 1);
            if (!closing) {
                if (++parts > lim.maxParts) {
                    cutHere(cand, "more than " + std::to_string(lim.maxParts) + " MIME parts");
                    return ps;
                }
                startHeader();
            }
        }
    }
    for (const auto& l : stack)
        if (!l.boundary.empty() && ps.cut == raw.size()) {
            ps.defects.push_back("missing closing boundary");
            break;
        }
    if (inHeader && topLevelHeader) ps.topHeaderEnd = raw.size();
    // mimetic's random-access parser is safe when every boundary string in
    // the mail sits at a line start and every level was closed in order.
    for (const auto& l : stack)
        if (!l.boundary.empty()) clean = false;
    if (!ps.edits.empty() || ps.cut != raw.size() || boundaryLines.size() > 8) clean = false;
    for (const auto& [b, lines] : boundaryLines) {
        if (!clean) break;
        size_t count = 0;
        for (size_t p = raw.find(b); p != std::string_view::npos; p = raw.find(b, p + b.size())) ++count;
        if (count != lines) clean = false;
    }
    ps.cleanStructure = clean;
    return ps;
}

// ---------------------------------------------------------------- addresses

std::string stripComments(std::string_view s, std::string* comment) {
    std::string out;
    int depth = 0;
    bool inQuote = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (inQuote) {
            out.push_back(c);
            if (c == '\\' && i + 1 < s.size()) out.push_back(s[++i]);
            else if (c == '"') inQuote = false;
            continue;
        }
        if (depth == 0 && c == '"') {
            inQuote = true;
            out.push_back(c);
        } else if (c == '(') {
            if (depth > 0 && comment) comment->push_back(c);
            ++depth;
        } else if (c == ')' && depth > 0) {
            --depth;
            if (depth > 0 && comment) comment->push_back(c);
        } else if (depth > 0) {
            if (comment) comment->push_back(c);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string unquote(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '"') continue;
        if (s[i] == '\\' && i + 1 < s.size()) {
            out.push_back(s[++i]);
            continue;
        }
        out.push_back(s[i]);
    }
    return out;
}

Address parseMailbox(std::string_view item, std::string_view rawCharset) {
    Address a;
    // Find '<' outside quotes.
    bool inQuote = false;
    size_t lt = std::string_view::npos;
    for (size_t i = 0; i < item.size(); ++i) {
        char c = item[i];
        if (c == '\\' && inQuote) {
            ++i;
            continue;
        }
        if (c == '"') inQuote = !inQuote;
        if (c == '<' && !inQuote) {
            lt = i;
        }
    }
    if (lt != std::string_view::npos) {
        size_t gt = item.find('>', lt);
        std::string_view addr = item.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
        a.email = std::string(trim(stripComments(addr, nullptr)));
        std::string name = stripComments(item.substr(0, lt), nullptr);
        a.name = std::string(trim(decodeRfc2047(unquote(trim(name)), nullptr, rawCharset)));
    } else {
        std::string comment;
        std::string addr = stripComments(item, &comment);
        a.email = std::string(trim(addr));
        a.name = std::string(trim(decodeRfc2047(unquote(trim(comment)), nullptr, rawCharset)));
    }
    // Whitespace runs inside a (broken) address become one space; a source
    // route is dropped.
    {
        std::string e;
        for (char c : a.email) {
            if (c == '\t' || c == '\r' || c == '\n') c = ' ';
            if (c == ' ' && (e.empty() || e.back() == ' ')) continue;
            e.push_back(c);
        }
        while (!e.empty() && e.back() == ' ') e.pop_back();
        a.email = e;
    }
    if (!a.email.empty() && a.email[0] == '@') {
        auto colon = a.email.find(':');
        if (colon != std::string::npos) a.email.erase(0, colon + 1);
    }
    if (!isValidUtf8(a.email)) a.email = undeclaredToUtf8(a.email);
    // Collapse whitespace runs in the name.
    std::string n;
    for (char c : a.name) {
        if (c == '\t' || c == '\r' || c == '\n') c = ' ';
        if (c == ' ' && (n.empty() || n.back() == ' ')) continue;
        n.push_back(c);
    }
    while (!n.empty() && n.back() == ' ') n.pop_back();
    a.name = n;
    return a;
}

std::vector<std::string> msgIds(std::string_view v) {
    std::vector<std::string> ids;
    size_t pos = 0;
    while (true) {
        size_t lt = v.find('<', pos);
        if (lt == std::string_view::npos) break;
        size_t gt = v.find('>', lt);
        if (gt == std::string_view::npos) break;
        std::string id(v.substr(lt, gt - lt + 1));
        id.erase(std::remove_if(id.begin(), id.end(), [](char c) { return c == ' ' || c == '\t'; }), id.end());
        if (id.size() > 2) ids.push_back(id);
        pos = gt + 1;
    }
    return ids;
}

// ---------------------------------------------------------------- entities

std::vector<Address> parseAddressListCs(std::string_view raw, std::string_view rawCharset);

/// Lists uuencoded blocks ("begin 644 name" ... "end") of a text body as
/// attachments. The text keeps them, as most parsers do.
void listUuencoded(const std::string& text, std::vector<Attachment>& atts) {
    size_t pos = 0;
    while ((pos = text.find("begin ", pos)) != std::string::npos) {
        bool lineStart = pos == 0 || text[pos - 1] == '\n';
        std::string_view line(text.data() + pos, text.find('\n', pos) == std::string::npos
                                                      ? text.size() - pos
                                                      : text.find('\n', pos) - pos);
        pos += 6;
        if (!lineStart || line.size() <= 10 || line[9] != ' ' || line[6] < '0' || line[6] > '7' ||
            line[7] < '0' || line[7] > '7' || line[8] < '0' || line[8] > '7')
            continue;
        size_t dataStart = static_cast<size_t>(line.data() - text.data()) + line.size() + 1;
        size_t stop = text.find("\nend", dataStart - 1);
        if (stop == std::string::npos) break;
        Attachment att;
        att.name = std::string(trim(line.substr(10)));
        att.contentType = "application/octet-stream";
        for (size_t lp = dataStart; lp < stop;) {
            size_t le = text.find('\n', lp);
            if (le == std::string::npos || le > stop) le = stop;
            if (le > lp) att.size += static_cast<size_t>((text[lp] - 32) & 63);
            lp = le + 1;
        }
        atts.push_back(std::move(att));
        pos = stop + 4;
    }
}

struct Walker {
    Walker(ParsedMail& mail, const ParseLimits& limits) : m(mail), lim(limits) {}
    ParsedMail& m;
    const ParseLimits& lim;
    bool haveText = false, haveHtml = false;
    std::string textCharset;       ///< declared charset of the chosen body part
    std::string fallbackText;      ///< first text of an attached message / named text part
    bool haveFallback = false;

    static const std::string* field(const mimetic::MimeEntity& e, const char* name, std::string& store) {
        for (const auto& f : e.header())
            if (iequals(std::string_view(f.name().data(), f.name().size()), name)) {
                store = f.value();
                return &store;
            }
        return nullptr;
    }

    std::string transferDecode(const std::string& body, const std::string& cte) {
        if (cte == "base64") return decodeBase64(body);
        if (cte == "quoted-printable") return decodeQuotedPrintable(body);
        if (!cte.empty() && cte != "7bit" && cte != "8bit" && cte != "binary" && cte != "7-bit" && cte != "8-bit")
            addDefect(m.defects, "unknown Content-Transfer-Encoding: " + cte);
        return body;
    }

    size_t decodedSize(const std::string& body, const std::string& cte) {
        if (cte == "base64") return base64DecodedSize(body);
        if (cte == "quoted-printable") return decodeQuotedPrintable(body).size();
        return body.size();
    }

    std::string textOf(const std::string& bytes, const std::string& charsetIn, bool html) {
        std::string charset = charsetIn;
        if (html && (charset.empty() || (normalizeCharset(charset) == "utf-8" && !isValidUtf8(bytes)))) {
            // Undeclared, or declared UTF-8 but not UTF-8: the <meta> may know.
            std::string meta = htmlMetaCharset(bytes);
            if (!meta.empty() && isKnownCharset(meta)) charset = meta;
        }
        std::string out;
        if (!charset.empty() && !isKnownCharset(charset)) addDefect(m.defects, "unknown charset: " + charset);
        convertToUtf8(bytes, charset, out);
        return normalizeNewlines(std::move(out));
    }

    static size_t approxSize(const mimetic::MimeEntity& e) {
        size_t s = 0;
        for (const auto& f : e.header()) s += f.name().size() + f.value().size() + 4;
        s += 2 + e.body().size() + e.body().preamble().size() + e.body().epilogue().size();
        for (const auto* p : e.body().parts()) s += approxSize(*p);
        return s;
    }

    void parseDeliveryStatus(const std::string& body) {
        std::string text = normalizeNewlines(body);
        size_t pos = 0;
        bool first = true;
        while (pos <= text.size()) {
            size_t e = text.find("\n\n", pos);
            std::string_view block(text.data() + pos, (e == std::string::npos ? text.size() : e) - pos);
            if (!trim(block).empty()) {
                DsnRecipient ds;
                bool any = false;
                size_t lp = 0;
                std::vector<std::pair<std::string, std::string>> fields;
                while (lp < block.size()) {
                    size_t le = block.find('\n', lp);
                    std::string_view line =
                        block.substr(lp, le == std::string_view::npos ? std::string_view::npos : le - lp);
                    lp = le == std::string_view::npos ? block.size() : le + 1;
                    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
                        if (!fields.empty()) fields.back().second += " " + std::string(trim(line));
                        continue;
                    }
                    auto colon = line.find(':');
                    if (colon == std::string_view::npos) continue;
                    fields.push_back({lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
                }
                // The address of "rfc822; user@x", also in the legacy forms: Exchange's
                // "smtp=user@x" / "<SMTP:user@x>", a stray quote before it, and an X.400
                // address carrying the RFC 822 one ("x400; /RFC-822=user(a)x/", RFC 2156).
                auto addrOf = [](const std::string& v) {
                    auto semi = v.find(';');
                    std::string a(
                        trim(semi == std::string::npos ? std::string_view(v) : std::string_view(v).substr(semi + 1)));
                    std::string low = asciiLower(a);
                    if (auto r = low.find("rfc-822="); r != std::string::npos) {
                        a = a.substr(r + 8, a.find_first_of("/;", r + 8) - (r + 8));
                        for (size_t at; (at = a.find("(a)")) != std::string::npos;) a.replace(at, 3, "@");
                    }
                    auto strip = [&a] {
                        a = std::string(trim(a));
                        if (a.size() > 1 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
                        while (!a.empty() && (a.front() == '\'' || a.front() == '"') &&
                               std::count(a.begin(), a.end(), a.front()) == 1)
                            a.erase(0, 1);  // a stray quote, not a quoted local part
                        while (!a.empty() && (a.back() == '\'' || a.back() == '"') &&
                               std::count(a.begin(), a.end(), a.back()) == 1)
                            a.pop_back();
                    };
                    strip();
                    low = asciiLower(a);
                    if (low.rfind("smtp=", 0) == 0 || low.rfind("smtp:", 0) == 0) a = a.substr(5), strip();
                    return a;
                };
                for (auto& [n, v] : fields) {
                    if (n == "final-recipient") ds.finalRecipient = addrOf(v), any = true;
                    else if (n == "original-recipient") ds.originalRecipient = addrOf(v), any = true;
                    else if (n == "action") ds.action = lower(trim(v)), any = true;
                    else if (n == "status") ds.status = std::string(trim(v.substr(0, v.find_first_of(" (")))), any = true;
                    else if (n == "diagnostic-code") ds.diagnosticCode = v;
                    else if (n == "reporting-mta" && first) m.reportingMta = addrOf(v);
                }
                if (any && (!ds.finalRecipient.empty() || !ds.originalRecipient.empty()))
                    m.deliveryStatus.push_back(std::move(ds));
                first = false;
            }
            if (e == std::string::npos) break;
            pos = e + 2;
        }
    }

    void offerFallback(const std::string& text) {
        if (!haveFallback && !trim(text).empty()) {
            fallbackText = text;
            haveFallback = true;
        }
    }

    /// An attached message: its text is only a fallback for the main text.
    void attachedMessage(const mimetic::MimeEntity& e, const std::string& cte, int depth, Attachment att) {
        m.hasAttachedMessage = true;
        const auto& body = e.body();
        ParsedMail inner;
        bool encoded = cte == "base64" || cte == "quoted-printable";
        if (encoded || (body.parts().empty() && !body.empty())) {
            if (depth >= lim.maxDepth) {
                addDefect(m.defects, "MIME nesting too deep: attached message ignored");
                m.attachments.push_back(std::move(att));
                return;
            }
            // Encoded (mimetic saw only base64 text) or not recognised as a
            // message by mimetic (multipart/digest default type): parse it here.
            // mimetic may have made a child of the encoded text: take it back.
            std::string src = body;
            if (src.empty() && !body.parts().empty()) src = body.parts().front()->body();
            std::string decoded = encoded ? transferDecode(src, cte) : src;
            att.size = decoded.size();
            ParseLimits innerLim = lim;
            innerLim.maxDepth = std::max(0, lim.maxDepth - depth - 1);
            try {
                inner = parseMail(decoded, innerLim);
            } catch (const MailRejected& ex) {
                addDefect(m.defects, std::string("attached message rejected: ") + ex.what());
            }
        } else if (!body.parts().empty()) {
            const mimetic::MimeEntity& child = *body.parts().front();
            att.size = approxSize(child);
            Walker w{inner, lim};
            w.walk(child, depth + 1, std::string());
            w.finish();
            std::string tmp;
            if (const std::string* v = field(child, "Subject", tmp)) inner.subject = decodeRfc2047(trim(*v));
            if (const std::string* v = field(child, "Message-ID", tmp)) inner.messageId = std::string(trim(*v));
        } else {
            att.size = decodedSize(body, cte);
        }
        if (att.name.empty() && !inner.subject.empty()) att.name = inner.subject + ".eml";
        if (m.returnedMessageId.empty()) m.returnedMessageId = inner.messageId;
        if (m.forwardedText.empty()) m.forwardedText = inner.text;
        offerFallback(inner.text);
        m.attachments.push_back(std::move(att));
    }

    void walk(const mimetic::MimeEntity& e, int depth, const std::string& parentType) {
        if (depth > lim.maxDepth) {
            addDefect(m.defects,
                      "MIME nesting deeper than " + std::to_string(lim.maxDepth) + " levels: inner parts ignored");
            return;
        }
        std::string tmp;
        ParamHeader ct;
        if (const std::string* v = field(e, "Content-Type", tmp)) ct = parseParamHeader(*v, &m.defects);
        if (ct.value == "text") ct.value = "text/plain";
        if (ct.value.empty() || ct.value.find('/') == std::string::npos) {
            if (!ct.value.empty()) addDefect(m.defects, "invalid Content-Type: " + ct.value);
            ct.value = parentType == "multipart/digest" ? "message/rfc822" : "text/plain";
        }
        std::string cte;
        if (const std::string* v = field(e, "Content-Transfer-Encoding", tmp)) cte = lower(trim(*v));
        ParamHeader disp;
        if (const std::string* v = field(e, "Content-Disposition", tmp)) disp = parseParamHeader(*v, &m.defects);
        if (depth == 0) {
            m.contentType = ct.value;
            if (ct.value == "multipart/report") m.reportType = lower(ct.param("report-type"));
        }
        const auto& body = e.body();
        const std::string& type = ct.value;

        if (type.rfind("multipart/", 0) == 0) {
            if (body.parts().empty()) {
                addDefect(m.defects, "multipart without parts (boundary not found)");
                std::string content = body.preamble() + body + body.epilogue();
                if (!haveText && !trim(content).empty()) {
                    m.text = textOf(transferDecode(content, cte), ct.param("charset"), false);
                    haveText = true;
                }
                return;
            }
            for (const auto* p : body.parts()) walk(*p, depth + 1, type);
            return;
        }
        std::string filename = disp.param("filename");
        if (filename.empty()) filename = ct.param("name");
        Attachment att;
        att.name = filename;
        att.contentType = type;
        att.inlineDisposition = disp.value == "inline";
        bool isMessage = type == "message/rfc822" || type == "message/global";
        if (isMessage && depth == 0) {
            // The whole mail is an encapsulated message: its body is ours.
            if (cte == "base64" || cte == "quoted-printable" || body.parts().empty()) {
                attachedMessage(e, cte, depth, att);
            } else {
                walk(*body.parts().front(), depth + 1, type);
            }
            return;
        }
        if (isMessage) {
            attachedMessage(e, cte, depth, std::move(att));
            return;
        }
        if (type == "text/rfc822-headers" || type == "message/rfc822-headers") {
            m.hasAttachedMessage = true;
            att.size = decodedSize(body, cte);
            if (m.returnedMessageId.empty()) {
                // The returned headers of a DSN: whose Message-ID tells whether the mail was ours.
                try {
                    m.returnedMessageId = parseMail(transferDecode(body, cte) + "\r\n", lim).messageId;
                } catch (const MailRejected&) {
                    addDefect(m.defects, "returned headers unreadable");
                }
            }
            m.attachments.push_back(std::move(att));
            return;
        }
        if (type == "message/delivery-status" || type == "message/global-delivery-status") {
            m.hasDeliveryStatus = true;
            parseDeliveryStatus(transferDecode(body, cte));
            att.size = decodedSize(body, cte);
            m.attachments.push_back(std::move(att));
            return;
        }
        if (type == "message/feedback-report") {
            m.hasFeedbackReport = true;
            // RFC 5965 / 6650: the address the report is about.
            const std::string report = transferDecode(body, cte);
            std::string_view rest(report);
            while (!rest.empty()) {
                size_t nl = rest.find('\n');
                std::string_view line = rest.substr(0, nl);
                rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
                auto colon = line.find(':');
                if (colon == std::string_view::npos) continue;
                std::string name = asciiLower(trim(line.substr(0, colon)));
                if (name != "original-rcpt-to" && name != "removal-recipient") continue;
                std::string addr(trim(line.substr(colon + 1)));
                if (addr.size() > 2 && addr.front() == '<' && addr.back() == '>') addr = addr.substr(1, addr.size() - 2);
                if (addr.find('@') != std::string::npos) m.feedbackRecipients.push_back(addr);
            }
        }
        bool isText = type == "text/plain" || type == "text/html";
        bool attachmentDisp = disp.value == "attachment";
        // A single-part mail's text is its body, whatever its name says.
        bool bodyCandidate =
            isText && (depth == 0 || (!attachmentDisp && (filename.empty() || disp.value == "inline")));
        if (bodyCandidate && type == "text/plain" && !haveText) {
            m.text = textOf(transferDecode(body, cte), ct.param("charset"), false);
            listUuencoded(m.text, m.attachments);
            textCharset = ct.param("charset");
            haveText = true;
            return;
        }
        if (bodyCandidate && type == "text/html" && !haveHtml) {
            m.html = textOf(transferDecode(body, cte), ct.param("charset"), true);
            if (!haveText) textCharset = ct.param("charset");
            haveHtml = true;
            return;
        }
        if (bodyCandidate && parentType == "multipart/alternative") return;  // another alternative
        std::string decoded;
        if (type == "text/plain" && !haveFallback) {
            decoded = transferDecode(body, cte);
            att.size = decoded.size();
            offerFallback(textOf(decoded, ct.param("charset"), false));
        } else {
            att.size = decodedSize(body, cte);
        }
        m.attachments.push_back(std::move(att));
    }

    /// Body choice once the tree is walked: text/plain, else HTML as text,
    /// else the text of an attached message or of a text attachment.
    void finish() {
        if (m.text.empty() && !m.html.empty()) {
            m.text = htmlToText(m.html);
            m.textFromHtml = true;
        }
        if (trim(m.text).empty() && haveFallback) m.text = fallbackText;
        if (!isValidUtf8(m.text)) m.text = repairUtf8(m.text);
    }
};

void readTopHeaders(const mimetic::MimeEntity& e, ParsedMail& m, const std::string& rawCharset) {
    bool haveFrom = false, haveTo = false, haveCc = false, haveSubject = false, haveDate = false,
         haveMsgId = false, haveIrt = false, haveRefs = false, haveReplyTo = false, haveRp = false;
    Address replyToAddr;
    for (const auto& f : e.header()) {
        std::string name(f.name().data(), f.name().size());
        std::string raw = f.value();
        std::string decoded = decodeRfc2047(raw, nullptr, rawCharset);
        if (iequals(name, "From") && !haveFrom) {
            // The first mailbox with an address; broken senders ("[???]", "<>")
            // give way to a later From field.
            for (const auto& a : parseAddressListCs(raw, rawCharset)) {
                if (a.email.find('@') != std::string::npos) {
                    m.from = a;
                    haveFrom = true;
                    break;
                }
                if (m.from.email.empty() && m.from.name.empty()) m.from = a;
            }
        } else if (iequals(name, "To") && !haveTo) {
            haveTo = true;
            m.to = parseAddressListCs(raw, rawCharset);
        } else if (iequals(name, "Cc") && !haveCc) {
            haveCc = true;
            m.cc = parseAddressListCs(raw, rawCharset);
        } else if (iequals(name, "Reply-To") && !haveReplyTo) {
            haveReplyTo = true;
            auto list = parseAddressListCs(raw, rawCharset);
            if (!list.empty()) m.replyTo = list.front().email;
            if (!list.empty()) replyToAddr = list.front();
        } else if (iequals(name, "Return-Path") && !haveRp) {
            haveRp = true;
            m.hasReturnPath = true;
            auto list = parseAddressListCs(raw, rawCharset);
            if (!list.empty()) m.returnPath = list.front().email;
        } else if (iequals(name, "Subject") && !haveSubject) {
            haveSubject = true;
            m.subject = decodeRfc2047(trim(raw), &m.defects, rawCharset);
        } else if (iequals(name, "Date") && !haveDate) {
            haveDate = true;
            m.date = std::string(trim(decoded));
        } else if (iequals(name, "Message-ID") && !haveMsgId) {
            haveMsgId = true;
            auto ids = msgIds(raw);
            m.messageId = ids.empty() ? std::string(trim(decoded)) : ids.front();
        } else if (iequals(name, "In-Reply-To") && !haveIrt) {
            haveIrt = true;
            auto ids = msgIds(raw);
            m.inReplyTo = ids.empty() ? std::string(trim(decoded)) : ids.front();
        } else if (iequals(name, "References") && !haveRefs) {
            haveRefs = true;
            m.references = msgIds(raw);
        }
        m.headers.emplace_back(name, std::move(decoded));
    }
    // No usable From: the Reply-To is the best sender we have.
    if (m.from.email.find('@') == std::string::npos && replyToAddr.email.find('@') != std::string::npos) {
        m.from = replyToAddr;
        addDefect(m.defects, "no usable From address: Reply-To used");
    }
}

std::vector<Address> parseAddressListCs(std::string_view raw, std::string_view rawCharset) {
    std::vector<Address> out;
    std::string s(raw);
    // Split at top-level commas; groups "name: a, b;" lose their label.
    std::vector<std::string> items;
    std::string cur;
    bool inQuote = false;
    int paren = 0, angle = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (inQuote) {
            cur.push_back(c);
            if (c == '\\' && i + 1 < s.size()) cur.push_back(s[++i]);
            else if (c == '"') inQuote = false;
            continue;
        }
        if (c == '=' && i + 1 < s.size() && s[i + 1] == '?') {
            // An encoded word is one token, commas inside it included.
            size_t q1 = s.find('?', i + 2);
            size_t q2 = q1 == std::string::npos ? q1 : s.find('?', q1 + 1);
            size_t end = q2 == std::string::npos ? q2 : s.find("?=", q2 + 1);
            if (end != std::string::npos && end - i < 400) {
                cur.append(s, i, end + 2 - i);
                i = end + 1;
                continue;
            }
        }
        if (c == '"' && paren == 0) inQuote = true;
        else if (c == '(') ++paren;
        else if (c == ')' && paren > 0) --paren;
        else if (c == '<' && paren == 0) ++angle;
        else if (c == '>' && paren == 0 && angle > 0) --angle;
        if ((c == ',' || c == ';') && paren == 0 && angle == 0) {
            items.push_back(cur);
            cur.clear();
            continue;
        }
        if (c == ':' && paren == 0 && angle == 0 && cur.find('@') == std::string::npos) {
            cur.clear();  // group label
            continue;
        }
        cur.push_back(c);
    }
    items.push_back(cur);
    for (const auto& it : items) {
        if (trim(it).empty()) continue;
        Address a = parseMailbox(it, rawCharset);
        if (a.email.empty() && a.name.empty()) continue;
        out.push_back(std::move(a));
    }
    return out;
}

}  // namespace

std::vector<Address> parseAddressList(std::string_view raw) { return parseAddressListCs(raw, {}); }

bool looksLikeMail(std::string_view raw) {
    size_t pos = 0;
    while (raw.compare(pos, 5, "From ") == 0) {
        size_t next;
        lineEnd(raw, pos, next);
        pos = next;
    }
    // Leading blank lines are tolerated.
    while (pos < raw.size() && (raw[pos] == '\r' || raw[pos] == '\n')) ++pos;
    // NUL bytes in the first KB: binary data.
    std::string_view head = raw.substr(pos, 1024);
    if (head.find('\0') != std::string_view::npos) return false;
    // At least one well-formed header field at the top.
    size_t fields = 0;
    for (int lines = 0; pos < raw.size() && lines < 50; ++lines) {
        size_t next;
        size_t end = lineEnd(raw, pos, next);
        std::string_view line = raw.substr(pos, end - pos);
        if (line.empty()) break;
        if (line[0] != ' ' && line[0] != '\t') {
            size_t colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) break;
            bool ok = true;
            for (size_t i = 0; i < colon; ++i) {
                unsigned char c = static_cast<unsigned char>(line[i]);
                if (c <= 32 || c >= 127) ok = (c == ' ' || c == '\t') && i + 1 >= colon ? ok : false;
            }
            if (!ok) break;
            ++fields;
        }
        pos = next;
    }
    return fields > 0;
}

namespace {

void rejectOversized(std::string_view raw, const ParseLimits& lim) {
    if (raw.size() > lim.maxSize)
        throw MailRejected("mail larger than " + std::to_string(lim.maxSize) + " bytes");
}

/// What mimetic gets of `raw`: [start, cut) with the pre-scan's edits applied
/// (written into `rewritten` when there are any), loaded into `entity` with
/// mimetic's ignore mask `mask`.
void loadEntity(mimetic::MimeEntity& entity, std::string_view raw, PreScan& ps, std::string& rewritten, int mask) {
    std::string_view input = raw.substr(ps.start, ps.cut - ps.start);
    if (!ps.edits.empty()) {
        std::stable_sort(ps.edits.begin(), ps.edits.end(),
                         [](const PreScan::Edit& x, const PreScan::Edit& y) { return x.begin < y.begin; });
        rewritten.reserve(input.size() + 64);
        size_t p = ps.start;
        for (const auto& ed : ps.edits) {
            if (ed.begin >= ps.cut) break;
            if (ed.begin > p) rewritten.append(raw.substr(p, ed.begin - p));
            rewritten.append(ed.insert);
            p = std::max(p, std::min(ed.end, ps.cut));
        }
        if (p < ps.cut) rewritten.append(raw.substr(p, ps.cut - p));
        input = rewritten;
    }
    try {
        if (ps.cleanStructure)
            entity.load(input.data(), input.data() + input.size(), mask);
        else
            entity.load(LineIterator{input.data()}, LineIterator{input.data() + input.size()}, mask);
    } catch (const std::exception& ex) {
        throw MailRejected(std::string("MIME parser failed: ") + ex.what());
    }
}

}  // namespace

std::string headerMessageId(std::string_view raw, const ParseLimits& lim) {
    rejectOversized(raw, lim);
    PreScan ps = preScan(raw, lim);
    std::string rewritten;
    mimetic::MimeEntity entity;
    loadEntity(entity, raw, ps, rewritten, mimetic::imBody | mimetic::imChildParts | mimetic::imPreamble |
                                                 mimetic::imEpilogue);
    for (const auto& f : entity.header()) {
        if (!iequals(std::string_view(f.name().data(), f.name().size()), "Message-ID")) continue;
        // The first Message-ID field, read as readTopHeaders reads it; a value with no
        // <id> in it is decoded there in the charset the body declares.
        auto ids = msgIds(f.value());
        return ids.empty() ? parseMail(raw, lim).messageId : ids.front();
    }
    return "";
}

ParsedMail parseMail(std::string_view raw, const ParseLimits& lim) {
    rejectOversized(raw, lim);
    ParsedMail m;
    PreScan ps = preScan(raw, lim);
    for (auto& d : ps.defects) addDefect(m.defects, std::move(d));
    if (!looksLikeMail(raw)) addDefect(m.defects, "no header fields: not a mail");

    std::string rewritten;
    mimetic::MimeEntity entity;
    loadEntity(entity, raw, ps, rewritten, mimetic::imNone);
    Walker w{m, lim};
    w.walk(entity, 0, std::string());
    if (ps.topMultipartNoBoundary) {
        // mimetic split on "--" lines: take the raw body instead.
        size_t b = std::min(ps.topHeaderEnd, ps.cut);
        m.text = normalizeNewlines(undeclaredToUtf8(raw.substr(b, ps.cut - b)));
        m.attachments.clear();
    }
    w.finish();
    readTopHeaders(entity, m, w.textCharset);
    // One normal form for everything read later (windows-1258 and Mac text come decomposed).
    for (std::string* t : {&m.text, &m.html, &m.forwardedText, &m.subject, &m.from.name}) *t = nfc(*t);
    return m;
}

}  // namespace sm::mail
