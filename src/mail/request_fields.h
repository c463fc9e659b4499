// The request fields of flow 5 ("Label: value" lines) from a decoded text.
//
// Labels in English or Vietnamese, any order, case-insensitive, tolerant of
// leading bullets, *bold*/_emphasis_ markers, tabs, extra spaces and the
// full-width colon. Keys: access_id, contract_id, product, usage_type,
// problem_type, category, severity, description. The description runs on over
// the following lines until the next label or the end. The first occurrence
// of a label wins; values are trimmed strings (an Access ID stays a string:
// leading zeros matter).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sm::mail {

using RequestFields = std::map<std::string, std::string>;

RequestFields extractRequestFields(std::string_view text);

/// A request label named in running text ("my access id is 230 242 323"), not as a
/// "Label: value" line: what a mail without a request did contain, for the answer.
struct LabelMention {
    std::string key;    ///< field key, e.g. access_id
    std::string label;  ///< the label as our table writes it, e.g. "Access ID"
    std::string digits; ///< the digits that follow it (spaces, dashes, dots left out), may be empty
};
/// Each field key once, in the order of the label table; matched on folded text.
std::vector<LabelMention> labelsMentioned(std::string_view text);

}  // namespace sm::mail
