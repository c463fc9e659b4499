// ASCII helpers on views, for the parsers' hot paths (header names, parameter
// names, charset labels): no locale, no copy where none is needed.
#pragma once

#include <string>
#include <string_view>

namespace sm::mail {

inline char asciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

/// s with A-Z lowered; other bytes (UTF-8 included) unchanged.
inline std::string asciiLower(std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = asciiLower(c);
    return r;
}

/// s without leading and trailing spaces, tabs, CR and LF.
inline std::string_view trimWhitespace(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

}  // namespace sm::mail
