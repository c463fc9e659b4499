// What every list and show command prints with: aligned tables, times, the one
// JSON writer (--json: one document on stdout), and the scrubber that masks every
// Access ID and Contract ID of the store in free text (bearer secrets: a mail body,
// a description or a note may quote them).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include "store/database.h"

namespace sm::app {

/// "2026-11-28 09:15 UTC", or "-" for 0.
std::string utcTime(std::int64_t unixSeconds);
/// "2026-11-28T09:15:00Z", or "" for 0 (JSON).
std::string isoTime(std::int64_t unixSeconds);
/// s, or "-" when empty.
std::string orDash(const std::string& s);

/// A JSON object whose keys keep the order they were set in (documented order).
Poco::JSON::Object::Ptr jsonObject();
/// Prints one JSON document and a newline.
void printJson(std::ostream& out, const Poco::Dynamic::Var& document);

/// A table whose columns are as wide as their widest cell (UTF-8 aware), so a long
/// name or a five-digit id never runs into the next column.
class Table {
public:
    explicit Table(std::vector<std::string> headings);
    void add(std::vector<std::string> cells);
    std::size_t size() const { return rows_.size(); }
    void print(std::ostream& out) const;

private:
    std::vector<std::vector<std::string>> rows_;  // the headings first
};

/// Masks every Access ID and Contract ID the store holds where it occurs in text.
/// Built once per command (one query), applied to everything it prints.
class Scrubber {
public:
    explicit Scrubber(store::Database& db);
    std::string operator()(std::string text) const;

private:
    // clear -> masked; looked up at each place an ID could start (one pass over
    // the text however many contracts there are: a pass per ID took seconds).
    std::unordered_map<std::string, std::string> masked_;
};

}  // namespace sm::app
