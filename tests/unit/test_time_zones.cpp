// Issue 10 item 7: the business calendar in an IANA zone with daylight-saving rules
// (date-tz over the system tzdata), and due times shown in a contact's zone.
#include <catch2/catch.hpp>

#include <Poco/DateTime.h>
#include <Poco/Timezone.h>

#include "domain/business_hours.h"

using namespace sm::domain;

namespace {
Poco::Timestamp utc(int y, int mo, int d, int h, int mi) { return Poco::DateTime(y, mo, d, h, mi).timestamp(); }
}  // namespace

TEST_CASE("business hours across the spring-forward change in Europe/Berlin", "[timezone]") {
    BusinessCalendar cal;
    cal.timeZone = "Europe/Berlin";
    SeverityTarget fourHours{4, false};
    // Friday 2026-03-27 15:00 CET (14:00 UTC): 2 hours left that day, 2 more on Monday
    // 2026-03-30, after the clocks went forward on Sunday: 11:00 CEST = 09:00 UTC.
    Poco::Timestamp due = responseDue(utc(2026, 3, 27, 14, 0), fourHours, cal);
    CHECK(due == utc(2026, 3, 30, 9, 0));
    CHECK(formatLocal(due, cal) == "2026-03-30 11:00 (Europe/Berlin, UTC+02:00)");
    // The same instant a week earlier is still in winter time.
    CHECK(formatLocal(utc(2026, 3, 23, 9, 0), cal) == "2026-03-23 10:00 (Europe/Berlin, UTC+01:00)");
}

TEST_CASE("business hours across the autumn change in America/New_York", "[timezone]") {
    BusinessCalendar cal;
    cal.timeZone = "America/New_York";
    SeverityTarget eightHours{8, false};
    // Friday 2026-10-30 17:00 EDT is closed; Monday 2026-11-02 (EST, UTC-5) 09:00-17:00.
    Poco::Timestamp due = responseDue(utc(2026, 10, 30, 21, 0), eightHours, cal);
    CHECK(due == utc(2026, 11, 2, 22, 0));
    CHECK(formatInZone(due, "Asia/Ho_Chi_Minh") == "2026-11-03 05:00 (Asia/Ho_Chi_Minh, UTC+07:00)");
}

TEST_CASE("a fixed offset still works and unknown zones are recognised", "[timezone]") {
    BusinessCalendar cal;
    cal.utcOffsetMinutes = 7 * 60;
    CHECK(formatLocal(utc(2026, 11, 26, 8, 0), cal) == "2026-11-26 15:00 (UTC+07:00)");
    CHECK(isKnownTimeZone("Asia/Ho_Chi_Minh"));
    CHECK_FALSE(isKnownTimeZone("Mars/Olympus_Mons"));
}
