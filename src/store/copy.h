// Moving up from SQLite to PostgreSQL: every row of every table of one database
// copied into another (issue 12, `supportmail copy-database`), so a site that
// outgrows one machine keeps its history.
//
// The target is migrated to the same schema version first; then, in ONE transaction
// on the target, each table is copied in an order that satisfies its foreign keys,
// ids kept, each row inserted with ON CONFLICT DO NOTHING: a rerun (after a failure
// or a second time) adds only what is missing and changes nothing else. Job leases
// are not copied (they belong to the running processes of the old site). After the
// copy the target's id sequences continue after the largest id, and every table's
// row count is compared with the source's: a difference throws CopyError and the
// transaction is rolled back.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/database.h"

namespace sm::store {

class CopyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct TableCopy {
    std::string table;
    std::int64_t sourceRows = 0;
    std::int64_t added = 0;        ///< rows this run inserted (0 on a rerun)
    std::int64_t targetRows = 0;   ///< after the copy: equal to sourceRows
};

/// Copies `from` into `to` (both migrated by this call). Throws CopyError when the
/// schema versions differ after migrating, or a count does not match; POCO's
/// exceptions for a database error. Neither connection may be in a transaction.
std::vector<TableCopy> copyDatabase(Database& from, Database& to);

}  // namespace sm::store
