// import-partners and import-renewals: the CRM's CSV files into the store.
//
// Both check the whole file first and report every bad line (line number, field,
// reason). A file with errors loads nothing, unless the caller asks to skip bad
// lines. Loading the same file twice changes nothing (upserts compare first).
#pragma once

#include "jobs/progress.h"

#include <string>
#include <vector>

#include "config/settings.h"
#include "store/database.h"

namespace sm::jobs {

struct LineProblem {
    int line = 0;
    std::string field;   ///< column name, or empty for the whole row
    std::string reason;
};

struct ImportReport {
    int lines = 0;
    int inserted = 0, updated = 0, unchanged = 0;  ///< rows of the main entity
    int locationsInserted = 0, locationsUpdated = 0;
    int contactsInserted = 0, contactsUpdated = 0;
    /// The file is the truth for each partner it lists: roles that changed, and contacts
    /// it no longer lists (kept, inactive).
    int contactsPromoted = 0, contactsDemoted = 0, contactsDeactivated = 0;
    /// Partners with a skipped line: their unlisted contacts were left as they were.
    int partnersNotReconciled = 0;
    int skipped = 0;
    std::vector<LineProblem> problems;
    bool loaded = false;  ///< false: nothing was written
    std::string summary() const;
};

/// Columns: partner_id, partner_name, membership, hq_country, contact_email,
/// contact_name, contact_role, contact_country, contact_language, and optionally
/// location_id, location_name, location_country. Throws io::CsvError /
/// std::runtime_error for a file that cannot be read as CSV at all.
ImportReport importPartners(store::Database& db, const config::Settings& settings, const std::string& path,
                            bool skipBadLines, ProgressSink* progress = nullptr);

/// Columns: partner_id, benefit, renewal_date, and optionally location_id
/// (required for competency_kit).
ImportReport importRenewals(store::Database& db, const config::Settings& settings, const std::string& path,
                            bool skipBadLines, ProgressSink* progress = nullptr);

}  // namespace sm::jobs
