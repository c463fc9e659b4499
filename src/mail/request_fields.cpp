// Label table and line scanner for request fields.
#include "mail/request_fields.h"
#include "mail/unicode_text.h"

#include <Poco/UTF8String.h>

#include <vector>

namespace sm::mail {
namespace {

// Label (as written; normalised below) -> field key. Keep every language here.
const struct {
    const char* label;
    const char* key;
} kLabels[] = {
    {"Access ID", "access_id"},        {"ID truy cập", "access_id"},     {"Mã truy cập", "access_id"},
    {"Contract ID", "contract_id"},    {"ID hợp đồng", "contract_id"},   {"Mã hợp đồng", "contract_id"},
    {"Product", "product"},            {"Sản phẩm", "product"},
    {"Usage type", "usage_type"},      {"Loại sử dụng", "usage_type"},
    {"Problem type", "problem_type"},  {"Loại sự cố", "problem_type"},
    {"Category", "category"},          {"Danh mục", "category"},
    {"Severity", "severity"},          {"Mức độ nghiêm trọng", "severity"}, {"Mức độ", "severity"},
    {"Description", "description"},   {"Mô tả", "description"},
};

/// Folded (any case, with or without Vietnamese diacritics: "MA HOP DONG" is "Mã hợp
/// đồng"), without spaces, hyphens, underscores, asterisks.
std::string normLabel(std::string_view s) {
    std::string low = foldForMatch(s);
    std::string out;
    for (char c : low)
        if (c != ' ' && c != '\t' && c != '-' && c != '_' && c != '*' && c != '.') out.push_back(c);
    return out;
}

const std::vector<std::pair<std::string, std::string>>& labelTable() {
    static const auto table = [] {
        std::vector<std::pair<std::string, std::string>> t;
        for (const auto& l : kLabels) t.emplace_back(normLabel(l.label), l.key);
        return t;
    }();
    return table;
}

std::string_view trimView(std::string_view s) {
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    // U+00A0 no-break spaces
    while (s.size() >= 2 && s.substr(0, 2) == "\xC2\xA0") s.remove_prefix(2);
    while (s.size() >= 2 && s.substr(s.size() - 2) == "\xC2\xA0") s.remove_suffix(2);
    return s;
}

/// Strips bullets and emphasis from the start of a line.
std::string_view stripLead(std::string_view s) {
    while (true) {
        s = trimView(s);
        if (s.empty()) return s;
        char c = s[0];
        if (c == '-' || c == '*' || c == '+' || c == '>' || c == '_' || c == '#') {
            s.remove_prefix(1);
            continue;
        }
        // UTF-8 bullets: • (E2 80 A2), · (C2 B7), – (E2 80 93), ▪ (E2 96 AA)
        if (s.substr(0, 3) == "\xE2\x80\xA2" || s.substr(0, 3) == "\xE2\x80\x93" || s.substr(0, 3) == "\xE2\x96\xAA") {
            s.remove_prefix(3);
            continue;
        }
        if (s.substr(0, 2) == "\xC2\xB7") {
            s.remove_prefix(2);
            continue;
        }
        return s;
    }
}

/// Value cleanup: emphasis markers around it, trailing spaces.
std::string cleanValue(std::string_view v) {
    v = trimView(v);
    while (!v.empty() && (v.front() == '*' || v.front() == '_')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '*' || v.back() == '_')) v.remove_suffix(1);
    return std::string(trimView(v));
}

/// Returns the field key if the line is "Label: value", with the value.
const std::string* matchLabel(std::string_view line, std::string& value) {
    std::string_view s = stripLead(line);
    // Colon: ASCII or full-width (EF BC 9A).
    size_t colon = s.find(':');
    size_t fw = s.find("\xEF\xBC\x9A");
    size_t colonLen = 1;
    if (fw != std::string_view::npos && (colon == std::string_view::npos || fw < colon)) {
        colon = fw;
        colonLen = 3;
    }
    if (colon == std::string_view::npos || colon == 0 || colon > 60) return nullptr;
    std::string label = normLabel(s.substr(0, colon));
    for (const auto& [norm, key] : labelTable())
        if (label == norm) {
            value = cleanValue(s.substr(colon + colonLen));
            return &key;
        }
    return nullptr;
}

}  // namespace

std::vector<LabelMention> labelsMentioned(std::string_view text) {
    const std::string folded = foldForMatch(text.substr(0, 20000));
    std::vector<LabelMention> out;
    for (const auto& l : kLabels) {
        bool seen = false;
        for (const auto& m : out) seen = seen || m.key == l.key;
        if (seen) continue;
        const std::string needle = foldForMatch(l.label);
        size_t at = folded.find(needle);
        if (at == std::string::npos) continue;
        LabelMention m{l.key, l.label, {}};
        size_t i = at + needle.size();
        // "access id is 0230 242 323", "ma truy cap: 230-242-323"
        for (size_t skipped = 0; i < folded.size() && skipped < 12 && !(folded[i] >= '0' && folded[i] <= '9');
             ++i, ++skipped) {
        }
        for (; i < folded.size(); ++i) {
            char c = folded[i];
            if (c >= '0' && c <= '9') m.digits.push_back(c);
            else if (c != ' ' && c != '-' && c != '.') break;
        }
        out.push_back(std::move(m));
    }
    return out;
}

RequestFields extractRequestFields(std::string_view text) {
    RequestFields fields;
    std::string* description = nullptr;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        std::string value;
        if (const std::string* key = matchLabel(line, value)) {
            description = nullptr;
            if (fields.count(*key)) continue;  // first occurrence wins
            auto& slot = fields[*key];
            slot = value;
            if (*key == "description") description = &slot;
            continue;
        }
        if (description) {
            // Quoted reply text ends the description.
            std::string_view t = trimView(line);
            if (!t.empty() && t[0] == '>') {
                description = nullptr;
                continue;
            }
            if (!description->empty() || !t.empty()) {
                description->push_back('\n');
                description->append(line.data(), line.size());
            }
        }
    }
    for (auto& [k, v] : fields) v = std::string(trimView(v));
    // Trailing whitespace-only lines of a description.
    if (auto it = fields.find("description"); it != fields.end()) {
        std::string& d = it->second;
        while (!d.empty() && (d.back() == '\n' || d.back() == ' ' || d.back() == '\r')) d.pop_back();
        if (!d.empty() && d.front() == '\n') d.erase(0, d.find_first_not_of('\n'));
    }
    return fields;
}

}  // namespace sm::mail
