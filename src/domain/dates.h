// Calendar dates as ISO strings ("2026-11-26"), as the files and the store keep
// them, with the little arithmetic the rules need.
#pragma once

#include <optional>
#include <string>

#include <Poco/Timestamp.h>

namespace sm::domain {

/// Strict YYYY-MM-DD with a real calendar day.
bool isIsoDate(const std::string& s);
/// date + days. Precondition: isIsoDate(date).
std::string addDays(const std::string& date, int days);
/// Whole days from a to b (b - a).
int daysBetween(const std::string& a, const std::string& b);
/// The UTC calendar date of a timestamp.
std::string isoDate(const Poco::Timestamp& t);
int yearOf(const std::string& date);

/// The program promises activation within four weeks of renewal: true when a
/// renewal of renewalDate still pending on `today` is overdue.
bool activationOverdue(const std::string& renewalDate, const std::string& today, int promiseDays = 28);

}  // namespace sm::domain
