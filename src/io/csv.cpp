#include "io/csv.h"

#include <fstream>
#include <set>
#include <sstream>

#include <Poco/String.h>

namespace sm::io {
namespace {

// Splits the text into rows of raw fields; records the starting line of each row.
std::vector<std::pair<int, std::vector<std::string>>> parse(const std::string& text) {
    std::vector<std::pair<int, std::vector<std::string>>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, fieldWasQuoted = false;
    int line = 1, rowLine = 1;
    std::size_t i = 0;
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 BOM from spreadsheet exports
    auto endField = [&] {
        row.push_back(fieldWasQuoted ? field : Poco::trim(field));
        field.clear();
        fieldWasQuoted = false;
    };
    auto endRow = [&] {
        endField();
        bool blank = row.size() == 1 && row[0].empty();
        if (!blank) rows.emplace_back(rowLine, std::move(row));
        row.clear();
    };
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    quoted = false;
                }
            } else {
                if (c == '\n') ++line;
                field += c;
            }
            continue;
        }
        if (c == '"' && Poco::trim(field).empty()) {
            field.clear();
            quoted = true;
            fieldWasQuoted = true;
        } else if (c == ',') {
            endField();
        } else if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            endRow();
            ++line;
            rowLine = line;
        } else {
            field += c;
        }
    }
    if (quoted) throw CsvError(rowLine, "unterminated quoted field");
    if (!field.empty() || !row.empty()) endRow();
    return rows;
}

}  // namespace

std::vector<CsvRecord> readCsv(const std::string& path, const std::vector<std::string>& requiredColumns,
                               const std::vector<std::string>& optionalColumns) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the file");
    std::stringstream buf;
    buf << in.rdbuf();
    auto rows = parse(buf.str());
    if (rows.empty()) throw CsvError(1, "the file is empty (a header row is required)");
    std::vector<std::string> header = rows.front().second;
    for (auto& h : header) h = Poco::toLower(Poco::trim(h));
    std::set<std::string> known(requiredColumns.begin(), requiredColumns.end());
    known.insert(optionalColumns.begin(), optionalColumns.end());
    std::set<std::string> seen;
    for (const auto& h : header) {
        if (!known.count(h)) throw CsvError(rows.front().first, "unknown column '" + h + "' in the header");
        if (!seen.insert(h).second) throw CsvError(rows.front().first, "column '" + h + "' appears twice");
    }
    for (const auto& r : requiredColumns)
        if (!seen.count(r)) throw CsvError(rows.front().first, "the header lacks the column '" + r + "'");
    std::vector<CsvRecord> out;
    for (std::size_t i = 1; i < rows.size(); ++i) {
        const auto& [line, fields] = rows[i];
        CsvRecord rec;
        rec.line = line;
        if (fields.size() != header.size()) {
            rec.error = "expected " + std::to_string(header.size()) + " fields, found " + std::to_string(fields.size());
            out.push_back(std::move(rec));
            continue;
        }
        for (std::size_t f = 0; f < header.size(); ++f) rec.fields[header[f]] = fields[f];
        out.push_back(std::move(rec));
    }
    return out;
}

}  // namespace sm::io
