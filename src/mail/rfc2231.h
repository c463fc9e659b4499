// Structured MIME header values with parameters (Content-Type,
// Content-Disposition), RFC 2045 + RFC 2231.
//
// Handles quoted and unquoted values, backslash escapes, comments,
// RFC 2231 charset'language'%XX values and continuations (name*0, name*1*,
// in any order), and the common non-standard RFC 2047 words inside quoted
// values (name="=?UTF-8?B?...?="). Parameter names are lower-cased; values
// come back as UTF-8. Broken input degrades (defects), never throws.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sm::mail {

struct ParamHeader {
    std::string value;                          ///< e.g. "text/plain", lower-cased, trimmed
    std::map<std::string, std::string> params;  ///< lower-case name -> decoded UTF-8 value

    /// Empty string when absent.
    std::string param(const std::string& name) const;
    bool has(const std::string& name) const { return params.count(name) != 0; }
};

ParamHeader parseParamHeader(std::string_view raw, std::vector<std::string>* defects = nullptr);

}  // namespace sm::mail
