// A small, forgiving HTML-to-text converter (no DOM, one pass).
#include "mail/html_text.h"
#include "mail/charset.h"

#include <cstring>
#include <unordered_map>

namespace sm::mail {
namespace {


const std::unordered_map<std::string, uint32_t>& entityTable() {
    static const std::unordered_map<std::string, uint32_t> table = [] {
        std::unordered_map<std::string, uint32_t> t = {
            {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
            {"nbsp", 0xA0}, {"ensp", 0x2002}, {"emsp", 0x2003}, {"thinsp", 0x2009},
            {"zwnj", 0x200C}, {"zwj", 0x200D}, {"lrm", 0x200E}, {"rlm", 0x200F},
            {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
            {"sbquo", 0x201A}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"bdquo", 0x201E},
            {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022}, {"hellip", 0x2026},
            {"permil", 0x2030}, {"prime", 0x2032}, {"lsaquo", 0x2039}, {"rsaquo", 0x203A},
            {"euro", 0x20AC}, {"trade", 0x2122}, {"larr", 0x2190}, {"rarr", 0x2192},
            {"uarr", 0x2191}, {"darr", 0x2193}, {"harr", 0x2194}, {"OElig", 0x152}, {"oelig", 0x153},
            {"Scaron", 0x160}, {"scaron", 0x161}, {"Yuml", 0x178}, {"fnof", 0x192},
            {"circ", 0x2C6}, {"tilde", 0x2DC}, {"minus", 0x2212}, {"times", 0xD7}, {"divide", 0xF7},
            {"Dstrok", 0x110}, {"dstrok", 0x111}, {"Alpha", 0x391}, {"alpha", 0x3B1},
            {"beta", 0x3B2}, {"gamma", 0x3B3}, {"delta", 0x3B4}, {"pi", 0x3C0}, {"mu", 0x3BC},
            {"infin", 0x221E}, {"ne", 0x2260}, {"le", 0x2264}, {"ge", 0x2265}};
        // ISO-8859-1 names for 0xA1..0xFF in code-point order.
        static const char* const latin1[] = {
            "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
            "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute",
            "micro", "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12",
            "frac34", "iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig",
            "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml",
            "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash",
            "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute",
            "acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc",
            "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde", "ograve", "oacute",
            "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc", "uuml",
            "yacute", "thorn", "yuml"};
        for (uint32_t i = 0; i < sizeof latin1 / sizeof latin1[0]; ++i) t.emplace(latin1[i], 0xA1 + i);
        return t;
    }();
    return table;
}

/// Decodes the reference at s[i] == '&'; appends and returns the length
/// consumed, or 0 when it is not a reference.
size_t decodeEntityAt(std::string_view s, size_t i, std::string& out) {
    size_t n = s.size();
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        ++j;
        bool hex = j < n && (s[j] == 'x' || s[j] == 'X');
        if (hex) ++j;
        size_t start = j;
        uint32_t cp = 0;
        while (j < n && j - start < 8) {
            char c = s[j];
            int d = -1;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
            if (d < 0) break;
            cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
            ++j;
        }
        if (j == start) return 0;
        if (j < n && s[j] == ';') ++j;
        // Windows-1252 code points in numeric references (&#150;) as browsers do.
        static const uint16_t c1[32] = {0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021,
                                        0x2C6, 0x2030, 0x160, 0x2039, 0x152, 0x8D, 0x17D, 0x8F,
                                        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                        0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178};
        if (cp >= 0x80 && cp < 0xA0) cp = c1[cp - 0x80];
        appendUtf8(out, cp);
        return j - i;
    }
    size_t start = j;
    while (j < n && j - start < 10 && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
                                       (s[j] >= '0' && s[j] <= '9')))
        ++j;
    if (j == start) return 0;
    const auto& t = entityTable();
    auto it = t.find(std::string(s.substr(start, j - start)));
    if (it == t.end()) return 0;
    if (j < n && s[j] == ';') ++j;
    appendUtf8(out, it->second);
    return j - i;
}

bool ieq(std::string_view a, const char* b) {
    size_t n = std::strlen(b);
    if (a.size() != n) return false;
    for (size_t i = 0; i < n; ++i) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        if (c != b[i]) return false;
    }
    return true;
}

bool isBlockTag(std::string_view name) {
    static const char* const blocks[] = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                                         "table", "blockquote", "pre", "hr", "ul", "ol", "dl", "dt", "dd",
                                         "section", "article", "header", "footer", "address", "form",
                                         "fieldset", "center", "tbody", "thead", "tfoot", "caption",
                                         "title", "body", "html", "nav", "aside", "main", "figure"};
    for (const char* b : blocks)
        if (ieq(name, b)) return true;
    return false;
}

/// Text accumulator that collapses whitespace and limits blank lines.
class TextSink {
public:
    void text(std::string_view s, bool pre) {
        for (char c : s) {
            if (pre) {
                if (c == '\r') continue;
                if (c == '\n') {
                    newline();
                    continue;
                }
                flushSpace();
                out_.push_back(c);
                continue;
            }
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
                pendingSpace_ = true;
            } else {
                flushSpace();
                out_.push_back(c);
            }
        }
    }
    void utf8(const std::string& s) {
        // &nbsp; stays a space for readability.
        if (s == "\xC2\xA0") {
            pendingSpace_ = true;
            return;
        }
        flushSpace();
        out_ += s;
    }
    void newline() {
        pendingSpace_ = false;
        while (!out_.empty() && out_.back() == ' ') out_.pop_back();
        if (out_.empty()) return;
        size_t trailing = 0;
        for (size_t k = out_.size(); k > 0 && out_[k - 1] == '\n'; --k) ++trailing;
        if (trailing < 2) out_.push_back('\n');
    }
    void space() { pendingSpace_ = true; }
    /// Between the first and the second cell of a table row: "label: value", the
    /// form the request labels are read in (no second colon after "Access ID:").
    void labelValue() {
        while (!out_.empty() && out_.back() == ' ') out_.pop_back();
        if (!out_.empty() && out_.back() != '\n' && out_.back() != ':') out_.push_back(':');
        pendingSpace_ = true;
    }
    std::string finish() {
        while (!out_.empty() && (out_.back() == '\n' || out_.back() == ' ')) out_.pop_back();
        return out_;
    }

private:
    void flushSpace() {
        if (pendingSpace_ && !out_.empty() && out_.back() != '\n' && out_.back() != ' ') out_.push_back(' ');
        pendingSpace_ = false;
    }
    std::string out_;
    bool pendingSpace_ = false;
};

}  // namespace

std::string decodeHtmlEntities(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        if (s[i] == '&') {
            size_t used = decodeEntityAt(s, i, out);
            if (used) {
                i += used;
                continue;
            }
        }
        out.push_back(s[i++]);
    }
    return out;
}

std::string htmlToText(std::string_view h) {
    TextSink sink;
    size_t n = h.size();
    size_t i = 0;
    int preDepth = 0;
    int cellInRow = 0;  // cells opened in the current table row
    while (i < n) {
        char c = h[i];
        if (c == '<') {
            // Comment, doctype, CDATA
            if (h.compare(i, 4, "<!--") == 0) {
                size_t e = h.find("-->", i + 4);
                i = e == std::string_view::npos ? n : e + 3;
                continue;
            }
            if (i + 1 < n && (h[i + 1] == '!' || h[i + 1] == '?')) {
                size_t e = h.find('>', i);
                i = e == std::string_view::npos ? n : e + 1;
                continue;
            }
            size_t j = i + 1;
            bool closing = false;
            if (j < n && h[j] == '/') {
                closing = true;
                ++j;
            }
            size_t nameStart = j;
            while (j < n && ((h[j] >= 'a' && h[j] <= 'z') || (h[j] >= 'A' && h[j] <= 'Z') ||
                             (h[j] >= '0' && h[j] <= '9') || h[j] == ':'))
                ++j;
            if (j == nameStart) {  // a lone '<' in text
                sink.text("<", preDepth > 0);
                ++i;
                continue;
            }
            std::string_view name = h.substr(nameStart, j - nameStart);
            // Find the end of the tag, skipping quoted attribute values.
            char quote = 0;
            for (; j < n; ++j) {
                if (quote) {
                    if (h[j] == quote) quote = 0;
                } else if (h[j] == '"' || h[j] == '\'') {
                    quote = h[j];
                } else if (h[j] == '>') {
                    break;
                }
            }
            size_t tagEnd = j < n ? j + 1 : n;
            if (!closing && (ieq(name, "script") || ieq(name, "style") || ieq(name, "head") ||
                             ieq(name, "title") || ieq(name, "xml"))) {
                // Skip to the matching close tag.
                std::string close = "</";
                close.append(name);
                size_t k = tagEnd;
                size_t found = std::string_view::npos;
                while (k < n) {
                    size_t lt = h.find("</", k);
                    if (lt == std::string_view::npos) break;
                    if (lt + close.size() <= n && ieq(h.substr(lt, close.size()), close.c_str()) ) {
                        found = lt;
                        break;
                    }
                    k = lt + 2;
                }
                if (found == std::string_view::npos) {
                    // Unclosed <head>/<title>: skip the tag only, keep the text.
                    if (ieq(name, "head") || ieq(name, "title")) {
                        i = tagEnd;
                        continue;
                    }
                    i = n;
                    continue;
                }
                size_t e = h.find('>', found);
                i = e == std::string_view::npos ? n : e + 1;
                continue;
            }
            if (ieq(name, "pre")) preDepth += closing ? (preDepth > 0 ? -1 : 0) : 1;
            if (isBlockTag(name)) {
                sink.newline();
                if (!closing && ieq(name, "li")) sink.utf8("- ");
                if (ieq(name, "tr") || ieq(name, "table")) cellInRow = 0;
            } else if (ieq(name, "td") || ieq(name, "th")) {
                if (!closing && ++cellInRow == 2) sink.labelValue();
                else sink.space();
            }
            i = tagEnd;
            continue;
        }
        if (c == '&') {
            std::string ent;
            size_t used = decodeEntityAt(h, i, ent);
            if (used) {
                sink.utf8(ent);
                i += used;
                continue;
            }
        }
        // Plain text run up to the next markup.
        size_t e = i + 1;
        while (e < n && h[e] != '<' && h[e] != '&') ++e;
        sink.text(h.substr(i, e - i), preDepth > 0);
        i = e;
    }
    return sink.finish();
}

std::string htmlMetaCharset(std::string_view html) {
    std::string_view head = html.substr(0, std::min<size_t>(html.size(), 4096));
    std::string low(head);
    for (auto& c : low)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    size_t pos = 0;
    while ((pos = low.find("<meta", pos)) != std::string::npos) {
        size_t end = low.find('>', pos);
        if (end == std::string::npos) break;
        std::string_view tag(low.data() + pos, end - pos);
        size_t cs = tag.find("charset=");
        if (cs != std::string_view::npos) {
            size_t b = cs + 8;
            while (b < tag.size() && (tag[b] == '"' || tag[b] == '\'' || tag[b] == ' ')) ++b;
            size_t e = b;
            while (e < tag.size() && tag[e] != '"' && tag[e] != '\'' && tag[e] != ' ' && tag[e] != ';' &&
                   tag[e] != '/')
                ++e;
            if (e > b) return std::string(tag.substr(b, e - b));
        }
        pos = end;
    }
    return {};
}

}  // namespace sm::mail
