#include "app/listing.h"

#include <Poco/DateTimeFormatter.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Timestamp.h>
#include <Poco/UTF8String.h>
#include <Poco/Unicode.h>
#include <Poco/TextIterator.h>
#include <Poco/UTF8Encoding.h>

#include "domain/ids.h"

using namespace Poco::Data::Keywords;

namespace sm::app {

std::string utcTime(std::int64_t seconds) {
    if (seconds <= 0) return "-";
    return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(seconds)),
                                           "%Y-%m-%d %H:%M UTC");
}

std::string isoTime(std::int64_t seconds) {
    if (seconds <= 0) return "";
    return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(seconds)),
                                           "%Y-%m-%dT%H:%M:%SZ");
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

Poco::JSON::Object::Ptr jsonObject() { return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER); }

void printJson(std::ostream& out, const Poco::Dynamic::Var& document) {
    Poco::JSON::Stringifier::stringify(document, out, 0, -1, Poco::JSON_WRAP_STRINGS);
    out << "\n";
}

namespace {
/// Characters, not bytes: Vietnamese names are multi-byte in UTF-8.
std::size_t displayWidth(const std::string& s) {
    Poco::UTF8Encoding utf8;
    Poco::TextIterator it(s, utf8), end(s);
    std::size_t n = 0;
    for (; it != end; ++it) ++n;
    return n;
}
}  // namespace

Table::Table(std::vector<std::string> headings) { rows_.push_back(std::move(headings)); }

void Table::add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

void Table::print(std::ostream& out) const {
    std::vector<std::size_t> width;
    for (const auto& r : rows_)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], displayWidth(r[i]));
        }
    for (const auto& r : rows_) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size()) line.append(width[i] - displayWidth(r[i]) + 2, ' ');
        }
        out << line << "\n";
    }
}

Scrubber::Scrubber(store::Database& db) {
    std::vector<std::string> access, contract;
    db.session() << "SELECT access_id, contract_id FROM contracts", into(access), into(contract), now;
    for (const auto& a : access)
        if (!a.empty()) masked_.emplace(a, domain::maskAccessId(a));
    for (const auto& c : contract)
        if (!c.empty()) masked_.emplace(c, domain::maskContractId(c));
}

std::string Scrubber::operator()(std::string text) const {
    if (masked_.empty()) return text;
    // Access IDs are 10 digits, Contract IDs "C-" and 10 characters (domain/ids.h).
    constexpr std::size_t kAccess = 10, kContract = 12;
    for (std::size_t i = 0; i < text.size(); ++i) {
        for (std::size_t len : {kContract, kAccess}) {
            if (i + len > text.size()) continue;
            auto it = masked_.find(text.substr(i, len));
            if (it == masked_.end()) continue;
            text.replace(i, len, it->second);
            i += it->second.size() - 1;
            break;
        }
    }
    return text;
}

}  // namespace sm::app
