#include "domain/dates.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Timespan.h>

namespace sm::domain {
namespace {
Poco::DateTime toDateTime(const std::string& s) {
    return Poco::DateTime(std::stoi(s.substr(0, 4)), std::stoi(s.substr(5, 2)), std::stoi(s.substr(8, 2)));
}
}  // namespace

bool isIsoDate(const std::string& s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (s[i] < '0' || s[i] > '9') return false;
    int y = std::stoi(s.substr(0, 4)), m = std::stoi(s.substr(5, 2)), d = std::stoi(s.substr(8, 2));
    return Poco::DateTime::isValid(y, m, d) && y >= 1970;
}

std::string addDays(const std::string& date, int days) {
    Poco::DateTime dt = toDateTime(date);
    dt += Poco::Timespan(days, 0, 0, 0, 0);
    return Poco::DateTimeFormatter::format(dt, "%Y-%m-%d");
}

int daysBetween(const std::string& a, const std::string& b) {
    return (toDateTime(b) - toDateTime(a)).days();
}

std::string isoDate(const Poco::Timestamp& t) { return Poco::DateTimeFormatter::format(t, "%Y-%m-%d"); }

int yearOf(const std::string& date) { return std::stoi(date.substr(0, 4)); }

bool activationOverdue(const std::string& renewalDate, const std::string& today, int promiseDays) {
    return daysBetween(renewalDate, today) > promiseDays;
}

}  // namespace sm::domain
