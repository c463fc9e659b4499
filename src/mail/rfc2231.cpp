// Parameter parsing with RFC 2231 continuations and charsets.
#include "mail/rfc2231.h"
#include "mail/ascii.h"

#include "mail/charset.h"
#include "mail/rfc2047.h"

#include <algorithm>

namespace sm::mail {
namespace {

std::string lower(std::string_view s) { return asciiLower(s); }
std::string_view trim(std::string_view s) { return trimWhitespace(s); }

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::string percentDecode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
            hexValue(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

struct Segment {
    int index = -1;       // -1: no continuation number
    bool extended = false;
    bool quoted = false;
    std::string value;    // raw (unquoted) value
};

}  // namespace

std::string ParamHeader::param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
}

ParamHeader parseParamHeader(std::string_view raw, std::vector<std::string>* defects) {
    ParamHeader h;
    size_t i = 0, n = raw.size();
    // Main value: up to the first ';' (outside quotes).
    {
        std::string v;
        bool inQuote = false;
        for (; i < n; ++i) {
            char c = raw[i];
            if (c == '"') {
                inQuote = !inQuote;
                continue;
            }
            if (c == ';' && !inQuote) break;
            if (c == '(' && !inQuote) {  // comment
                int depth = 0;
                for (; i < n; ++i) {
                    if (raw[i] == '(') ++depth;
                    if (raw[i] == ')' && --depth == 0) break;
                }
                continue;
            }
            v.push_back(c);
        }
        h.value = lower(trim(v));
        // "text/plain charset=..." without ';' is a known breakage.
        auto sp = h.value.find_first_of(" \t");
        if (sp != std::string::npos) {
            std::string rest = h.value.substr(sp);
            h.value.resize(sp);
            if (rest.find('=') != std::string::npos) {
                // Re-parse from the original text: find where the rest starts.
                auto pos = raw.find_first_of(" \t", raw.find_first_not_of(" \t"));
                if (pos != std::string_view::npos && pos < i) i = pos;
                if (defects) defects->push_back("missing ';' in parameter list");
            }
        }
    }
    std::map<std::string, std::vector<Segment>> segs;
    while (i < n) {
        while (i < n && (raw[i] == ';' || raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\r' || raw[i] == '\n'))
            ++i;
        if (i >= n) break;
        if (raw[i] == '(') {
            int depth = 0;
            for (; i < n; ++i) {
                if (raw[i] == '(') ++depth;
                if (raw[i] == ')' && --depth == 0) {
                    ++i;
                    break;
                }
            }
            continue;
        }
        size_t nameBegin = i;
        while (i < n && raw[i] != '=' && raw[i] != ';') ++i;
        std::string name = lower(trim(raw.substr(nameBegin, i - nameBegin)));
        if (i >= n || raw[i] == ';') {
            if (!name.empty() && defects) defects->push_back("parameter without value: " + name);
            continue;
        }
        ++i;  // '='
        while (i < n && (raw[i] == ' ' || raw[i] == '\t')) ++i;
        Segment seg;
        if (i < n && raw[i] == '"') {
            seg.quoted = true;
            ++i;
            bool closed = false;
            for (; i < n; ++i) {
                char c = raw[i];
                if (c == '\\' && i + 1 < n) {
                    seg.value.push_back(raw[++i]);
                } else if (c == '"') {
                    closed = true;
                    ++i;
                    break;
                } else {
                    seg.value.push_back(c);
                }
            }
            if (!closed && defects) defects->push_back("unterminated quoted parameter: " + name);
            while (i < n && raw[i] != ';') ++i;  // junk after the quote
        } else {
            size_t vb = i;
            while (i < n && raw[i] != ';') ++i;
            seg.value = std::string(trim(raw.substr(vb, i - vb)));
        }
        if (name.empty()) continue;
        // name*N*, name*N, name*
        std::string base = name;
        auto star = name.find('*');
        if (star != std::string::npos) {
            base = name.substr(0, star);
            std::string rest = name.substr(star + 1);
            if (!rest.empty() && rest.back() == '*') {
                seg.extended = true;
                rest.pop_back();
            } else if (rest.empty()) {
                seg.extended = true;
            }
            if (!rest.empty() && std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                rest.size() < 6)
                seg.index = std::stoi(rest);
            else if (!rest.empty())
                base = name;  // odd name, keep verbatim
        }
        segs[base].push_back(std::move(seg));
    }
    for (auto& [name, list] : segs) {
        bool anyIndexed = std::any_of(list.begin(), list.end(), [](const Segment& s) { return s.index >= 0; });
        std::string value;
        if (anyIndexed) {
            std::stable_sort(list.begin(), list.end(),
                             [](const Segment& a, const Segment& b) { return a.index < b.index; });
            std::string charset;
            std::string bytes;
            bool first = true;
            for (auto& s : list) {
                if (s.index < 0) continue;  // plain duplicate beside continuations: ignore
                std::string_view v = s.value;
                if (s.extended) {
                    if (first) {
                        auto q1 = v.find('\'');
                        auto q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
                        if (q2 != std::string_view::npos) {
                            charset = std::string(v.substr(0, q1));
                            v = v.substr(q2 + 1);
                        }
                    }
                    bytes += percentDecode(v);
                } else {
                    bytes += s.value;
                }
                first = false;
            }
            if (!convertToUtf8(bytes, charset, value) && defects)
                defects->push_back("unknown charset in parameter " + name + ": " + charset);
        } else {
            // Prefer the extended form when both name and name* are present.
            const Segment* pick = &list.front();
            for (auto& s : list)
                if (s.extended) pick = &s;
            if (pick->extended) {
                std::string_view v = pick->value;
                std::string charset;
                auto q1 = v.find('\'');
                auto q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
                if (q2 != std::string_view::npos) {
                    charset = std::string(v.substr(0, q1));
                    v = v.substr(q2 + 1);
                }
                if (!convertToUtf8(percentDecode(v), charset, value) && defects)
                    defects->push_back("unknown charset in parameter " + name + ": " + charset);
            } else {
                value = decodeRfc2047(pick->value, defects);
            }
        }
        h.params[name] = std::move(value);
    }
    return h;
}

}  // namespace sm::mail
