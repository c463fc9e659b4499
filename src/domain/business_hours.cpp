#include "domain/business_hours.h"

#include <cctype>
#include <cstdio>

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/String.h>
#include <Poco/Timespan.h>

#include <date/tz.h>

namespace sm::domain {

std::string toString(Severity s) { return s == Severity::A ? "A" : s == Severity::B ? "B" : "C"; }

std::optional<Severity> parseSeverity(const std::string& text) {
    std::string t = Poco::toLower(Poco::trim(text));
    for (const char* prefix : {"severity ", "sev ", "sev. ", "mức "})
        if (t.rfind(prefix, 0) == 0) t = Poco::trim(t.substr(std::string(prefix).size()));
    if (t.empty()) return std::nullopt;
    // "A", "A - critical", "a)", "A (critical business impact)"
    if (t.size() == 1 || !std::isalpha(static_cast<unsigned char>(t[1]))) {
        switch (t[0]) {
            case 'a': return Severity::A;
            case 'b': return Severity::B;
            case 'c': return Severity::C;
            default: break;
        }
    }
    if (t.rfind("critical", 0) == 0 || t.rfind("nghiêm trọng", 0) == 0) return Severity::A;
    if (t.rfind("moderate", 0) == 0 || t.rfind("trung bình", 0) == 0) return Severity::B;
    if (t.rfind("minimum", 0) == 0 || t.rfind("minimal", 0) == 0 || t.rfind("low", 0) == 0 ||
        t.rfind("thấp", 0) == 0)
        return Severity::C;
    return std::nullopt;
}

bool BusinessCalendar::isWorkingDay(const std::string& localDate, int weekday) const {
    return workingDays.count(weekday) && !holidays.count(localDate);
}

namespace {

using Seconds = std::chrono::seconds;

/// UTC offset in minutes in force at t (the zone's rules, or the fixed offset).
int offsetAt(const Poco::Timestamp& t, const BusinessCalendar& cal) {
    if (cal.timeZone.empty()) return cal.utcOffsetMinutes;
    auto info = date::locate_zone(cal.timeZone)->get_info(date::sys_seconds(Seconds(t.epochTime())));
    return static_cast<int>(info.offset.count() / 60);
}

Poco::DateTime toLocal(const Poco::Timestamp& t, const BusinessCalendar& cal) {
    return Poco::DateTime(t + Poco::Timespan(0, 0, offsetAt(t, cal), 0, 0));
}

/// The UTC instant of a local wall-clock time; a time skipped by a spring-forward
/// gap is read after the gap, an hour repeated in autumn as its first instance.
Poco::Timestamp toUtc(const Poco::DateTime& local, const BusinessCalendar& cal) {
    if (cal.timeZone.empty()) return local.timestamp() - Poco::Timespan(0, 0, cal.utcOffsetMinutes, 0, 0);
    date::local_seconds lt{Seconds(local.timestamp().epochTime())};
    const date::time_zone* zone = date::locate_zone(cal.timeZone);
    auto info = zone->get_info(lt);
    date::sys_seconds utc;
    if (info.result == date::local_info::nonexistent)
        utc = date::sys_seconds(lt.time_since_epoch()) - info.first.offset + (info.second.offset - info.first.offset);
    else
        utc = date::sys_seconds(lt.time_since_epoch()) - info.first.offset;
    return Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(utc.time_since_epoch().count()));
}

std::string offsetText(int off) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', std::abs(off) / 60, std::abs(off) % 60);
    return buf;
}

}  // namespace

Poco::Timestamp responseDue(const Poco::Timestamp& received, const SeverityTarget& target,
                            const BusinessCalendar& cal) {
    const Poco::Timespan wallClock(0, target.hours, 0, 0, 0);
    if (target.aroundTheClock || cal.workingDays.empty() || cal.endMinute <= cal.startMinute)
        return received + wallClock;

    // Walk in local time, minute resolution: consume the open minutes of each working day.
    Poco::DateTime local = toLocal(received, cal);
    long remaining = static_cast<long>(target.hours) * 60;
    for (int guard = 0; guard < 3660 && remaining > 0; ++guard) {
        std::string date = Poco::DateTimeFormatter::format(local, "%Y-%m-%d");
        int minuteOfDay = local.hour() * 60 + local.minute();
        if (cal.isWorkingDay(date, local.dayOfWeek()) && minuteOfDay < cal.endMinute) {
            int from = std::max(minuteOfDay, cal.startMinute);
            long open = cal.endMinute - from;
            if (remaining <= open) {
                Poco::DateTime day(local.year(), local.month(), local.day());
                Poco::DateTime due = day + Poco::Timespan(0, 0, static_cast<int>(from + remaining), 0, 0);
                if (from == minuteOfDay) due += Poco::Timespan(0, 0, 0, local.second(), 0);
                return toUtc(due, cal);
            }
            remaining -= open;
        }
        Poco::DateTime next(local.year(), local.month(), local.day());
        local = next + Poco::Timespan(1, 0, 0, 0, 0);
    }
    return received + wallClock;  // a calendar with no open time: fall back to wall clock
}

std::optional<int> parseUtcOffset(const std::string& text) {
    std::string t = Poco::trim(text);
    if (t == "Z" || t == "UTC" || t == "+00:00") return 0;
    int h = 0, m = 0;
    char sign = 0;
    if (t.size() == 6 && (t[0] == '+' || t[0] == '-') && t[3] == ':' &&
        std::sscanf(t.c_str() + 1, "%2d:%2d", &h, &m) == 2 && h <= 14 && m < 60) {
        sign = t[0];
        int minutes = h * 60 + m;
        return sign == '-' ? -minutes : minutes;
    }
    return std::nullopt;
}

bool isKnownTimeZone(const std::string& name) {
    try {
        return date::locate_zone(name) != nullptr;
    } catch (const std::exception&) {
        return false;
    }
}

std::string formatLocal(const Poco::Timestamp& t, const BusinessCalendar& cal) {
    int off = offsetAt(t, cal);
    Poco::DateTime local(t + Poco::Timespan(0, 0, off, 0, 0));
    return Poco::DateTimeFormatter::format(local, "%Y-%m-%d %H:%M") + " (" +
           (cal.timeZone.empty() ? "" : cal.timeZone + ", ") + "UTC" + offsetText(off) + ")";
}

std::string formatInZone(const Poco::Timestamp& t, const std::string& timeZone) {
    BusinessCalendar zoneOnly;
    zoneOnly.timeZone = timeZone;
    return formatLocal(t, zoneOnly);
}

}  // namespace sm::domain
