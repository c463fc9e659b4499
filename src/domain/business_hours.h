// Severity targets and the business-hours calendar (DOMAIN.md "Severity and
// response time"): severity A is answered within its hours around the clock,
// B and C within business hours of the calendar in configuration.
#pragma once

#include <optional>
#include <set>
#include <string>

#include <Poco/Timestamp.h>

namespace sm::domain {

enum class Severity { A, B, C };
std::string toString(Severity);
/// "A", "b", "Sev A", "critical" … → Severity; nullopt when unrecognised.
std::optional<Severity> parseSeverity(const std::string& text);

struct SeverityTarget {
    int hours = 8;
    bool aroundTheClock = false;  ///< true: wall-clock hours; false: business hours
};

struct SeverityTargets {
    SeverityTarget a{2, true};
    SeverityTarget b{4, false};
    SeverityTarget c{8, false};
    const SeverityTarget& of(Severity s) const { return s == Severity::A ? a : s == Severity::B ? b : c; }
};

/// Working days and hours in an IANA time zone (daylight-saving rules from the system's
/// tzdata through Howard Hinnant's date library) or, for older configurations, a fixed
/// UTC offset; with holidays.
struct BusinessCalendar {
    std::set<int> workingDays{1, 2, 3, 4, 5};  ///< 0 = Sunday … 6 = Saturday
    int startMinute = 9 * 60;                   ///< local time the day opens
    int endMinute = 17 * 60;                    ///< local time it closes
    int utcOffsetMinutes = 0;                   ///< local = UTC + offset, when timeZone is empty
    std::string timeZone;                       ///< IANA name ("Asia/Ho_Chi_Minh"); wins over the offset
    std::set<std::string> holidays;             ///< local dates YYYY-MM-DD

    bool isWorkingDay(const std::string& localDate, int weekday) const;
};

/// When the first response is due for a request received at `received`.
Poco::Timestamp responseDue(const Poco::Timestamp& received, const SeverityTarget& target,
                            const BusinessCalendar& calendar);

/// "+07:00" / "-05:30" / "Z" → minutes; nullopt for anything else.
std::optional<int> parseUtcOffset(const std::string& text);

/// True when the tz database knows this IANA zone name.
bool isKnownTimeZone(const std::string& name);

/// The local wall-clock form of a time in the calendar's zone or offset:
/// "2026-11-26 15:00 (UTC+07:00)", with a zone "2026-11-26 15:00 (Europe/Berlin, UTC+01:00)".
std::string formatLocal(const Poco::Timestamp& t, const BusinessCalendar& calendar);
/// The same in another IANA zone (a contact's).
std::string formatInZone(const Poco::Timestamp& t, const std::string& timeZone);

}  // namespace sm::domain
