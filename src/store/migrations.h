// The numbered schema migrations. Append only: a migration that shipped is never
// edited, a change is a new number. Tokens @ID@ and @NOW@ are expanded per engine.
#pragma once

#include <vector>

namespace sm::store {

struct Migration {
    int version;
    const char* name;
    const char* sql;  ///< statements separated by ';' at line ends
};

const std::vector<Migration>& migrations();

}  // namespace sm::store
