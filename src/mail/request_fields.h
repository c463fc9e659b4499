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

namespace sm::mail {

using RequestFields = std::map<std::string, std::string>;

RequestFields extractRequestFields(std::string_view text);

}  // namespace sm::mail
