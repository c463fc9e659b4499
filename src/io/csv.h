// RFC 4180 CSV reading for the CRM files: a header row naming the columns, then
// one record per row. Quoted fields may hold commas, quotes ("") and newlines.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sm::io {

struct CsvRecord {
    int line = 0;  ///< 1-based line on which the record starts
    std::map<std::string, std::string> fields;  ///< by header name, values trimmed
    std::string error;  ///< non-empty: the row itself is malformed (wrong field count)
};

class CsvError : public std::runtime_error {
public:
    CsvError(int line, const std::string& what) : std::runtime_error(what), line_(line) {}
    int line() const { return line_; }

private:
    int line_;
};

/// Reads the whole file. A row with a different number of fields than the header
/// comes back with `error` set. Throws CsvError for an unterminated quote or a
/// header lacking a required column; std::runtime_error when the file cannot be read.
std::vector<CsvRecord> readCsv(const std::string& path, const std::vector<std::string>& requiredColumns,
                               const std::vector<std::string>& optionalColumns);

}  // namespace sm::io
