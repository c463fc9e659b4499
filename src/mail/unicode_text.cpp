// Normal forms through utf8proc: one call per text, no table of our own.
#include "mail/unicode_text.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <utf8proc.h>

namespace sm::mail {
namespace {

/// utf8proc_map with these options; nullopt-like empty flag on invalid input.
bool mapped(std::string_view in, int options, std::string& out) {
    utf8proc_uint8_t* result = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                                      static_cast<utf8proc_ssize_t>(in.size()), &result,
                                      static_cast<utf8proc_option_t>(options));
    if (n < 0) return false;
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(result, &std::free);
    out.assign(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
    return true;
}

/// True when no code point can change under NFC: all below U+0300 (before the first
/// combining mark), CJK ideographs or U+FFFD. Most mail is, and a repaired binary
/// (megabytes of U+FFFD) would otherwise take a second to normalise.
bool triviallyNfc(std::string_view s) {
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
    while (left > 0) {
        if (*p < 0x80) {
            ++p, --left;
            continue;
        }
        utf8proc_int32_t cp = 0;
        utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
        if (n <= 0) return false;
        if (!(cp < 0x300 || cp == 0xFFFD || (cp >= 0x3400 && cp <= 0x9FFF))) return false;
        p += n, left -= n;
    }
    return true;
}

}  // namespace

std::string nfc(std::string_view utf8) {
    if (triviallyNfc(utf8)) return std::string(utf8);
    std::string out;
    if (!mapped(utf8, UTF8PROC_STABLE | UTF8PROC_COMPOSE, out)) return std::string(utf8);
    return out;
}

std::string foldForMatch(std::string_view utf8) {
    // ASCII has no compatibility forms, marks or đ: its key is its lower case. Most
    // lines of most mail are ASCII, and utf8proc costs a call, a copy and a
    // decomposition per character (a third of reading a request's fields).
    if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
        std::string lower(utf8);
        for (auto& c : lower)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
        return lower;
    }
    std::string out;
    if (!mapped(utf8, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK,
                out))
        return std::string(utf8);
    // đ (U+0111) has no decomposition; after case folding Đ is đ too.
    std::string folded;
    folded.reserve(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
        if (out.compare(i, 2, "\xC4\x91") == 0) {
            folded.push_back('d');
            ++i;
        } else {
            folded.push_back(out[i]);
        }
    }
    return folded;
}

std::string normalizeTypedDigits(std::string_view typed) {
    std::string compat;
    if (!mapped(typed, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, compat)) return std::string(typed);
    std::string digits;
    for (size_t i = 0; i < compat.size(); ++i) {
        char c = compat[i];
        if (c >= '0' && c <= '9') digits.push_back(c);
        else if (c == ' ' || c == '-' || c == '.' || c == '\t') continue;
        else if (compat.compare(i, 2, "\xC2\xA0") == 0) ++i;  // no-break space
        else return std::string(typed);
    }
    return digits;
}

}  // namespace sm::mail
