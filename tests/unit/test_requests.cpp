// Request checks in DOMAIN.md's order, severities, business-hours due times, case numbers.
#include <catch2/catch.hpp>

#include <random>
#include <regex>

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormatter.h>

#include "domain/business_hours.h"
#include "domain/requests.h"

using namespace sm::domain;

namespace {

ProductCatalogue catalogue() {
    return ProductCatalogue({
        {"windows_server", "Windows Server", {"windows server", "win server"}, Scope::OnPrem, true, ""},
        {"sql_server", "SQL Server", {}, Scope::OnPrem, true, ""},
        {"azure", "Microsoft Azure", {"azure"}, Scope::Cloud, true, ""},
        {"office365", "Office 365", {"o365", "microsoft 365"}, Scope::Cloud, false, "https://portal.office.com"},
    });
}

ContractFacts facts(Scope scope, int balance, const std::string& expires = "2027-12-31") {
    ContractFacts f;
    f.contract.displayName = "26 Gold-1-unk (0123xxxxxx)";
    f.contract.scope = scope;
    f.contract.expiresOn = expires;
    f.balance = balance;
    return f;
}

Poco::Timestamp utc(int y, int mo, int d, int h, int mi) { return Poco::DateTime(y, mo, d, h, mi).timestamp(); }
std::string iso(const Poco::Timestamp& t) { return Poco::DateTimeFormatter::format(t, "%Y-%m-%d %H:%M"); }

}  // namespace

TEST_CASE("an unknown pair is refused with the leading-zeros hint", "[domain][requests]") {
    auto cat = catalogue();
    auto d = decideRequest(std::nullopt, "230242323", "Windows Server", "B", cat, "2026-11-26");
    CHECK(d.outcome == RequestOutcome::UnknownPair);
    CHECK(d.reason.find("9 digits") != std::string::npos);
    CHECK(d.reason.find("leading zeros") != std::string::npos);
    auto full = decideRequest(std::nullopt, "0230242323", "Windows Server", "B", cat, "2026-11-26");
    CHECK(full.outcome == RequestOutcome::UnknownPair);
    CHECK(full.reason.find("9 digits") == std::string::npos);
}

TEST_CASE("checks follow DOMAIN.md's order", "[domain][requests]") {
    auto cat = catalogue();
    // expired wins over an empty balance and a wrong product
    CHECK(decideRequest(facts(Scope::Cloud, 0, "2026-01-01"), "", "SQL Server", "A", cat, "2026-11-26").outcome ==
          RequestOutcome::Expired);
    // the expiry day itself is no longer valid
    CHECK(decideRequest(facts(Scope::Any, 3, "2026-11-26"), "", "SQL Server", "A", cat, "2026-11-26").outcome ==
          RequestOutcome::Expired);
    // no incidents wins over scope
    CHECK(decideRequest(facts(Scope::Cloud, 0), "", "SQL Server", "A", cat, "2026-11-26").outcome ==
          RequestOutcome::NoIncidentsLeft);
    // SCS pair with an on-prem product
    auto scope = decideRequest(facts(Scope::Cloud, 5), "", "SQL Server 2019", "A", cat, "2026-11-26");
    CHECK(scope.outcome == RequestOutcome::OutOfScope);
    CHECK(scope.reason.find("cloud products only") != std::string::npos);
    // a product that does not use IDs: pointer to its portal
    auto o365 = decideRequest(facts(Scope::Any, 5), "", "o365", "B", cat, "2026-11-26");
    CHECK(o365.outcome == RequestOutcome::ProductWithoutIds);
    CHECK(o365.reason.find("https://portal.office.com") != std::string::npos);
    // unknown product, then missing severity, then accepted
    CHECK(decideRequest(facts(Scope::Any, 5), "", "Lotus Notes", "B", cat, "2026-11-26").outcome ==
          RequestOutcome::UnknownProduct);
    CHECK(decideRequest(facts(Scope::Any, 5), "", "Windows Server", "", cat, "2026-11-26").outcome ==
          RequestOutcome::MissingSeverity);
    auto ok = decideRequest(facts(Scope::Any, 1), "", "windows server 2022", "Sev A", cat, "2026-11-26");
    CHECK(ok.outcome == RequestOutcome::Accepted);
    REQUIRE(ok.product);
    CHECK(ok.product->key == "windows_server");
    CHECK(ok.severity == Severity::A);
}

TEST_CASE("severity words", "[domain][requests]") {
    CHECK(parseSeverity("A") == Severity::A);
    CHECK(parseSeverity(" b ") == Severity::B);
    CHECK(parseSeverity("C - minimum business impact") == Severity::C);
    CHECK(parseSeverity("Severity B") == Severity::B);
    CHECK(parseSeverity("critical") == Severity::A);
    CHECK_FALSE(parseSeverity("D"));
    CHECK_FALSE(parseSeverity("asap"));
    CHECK_FALSE(parseSeverity(""));
}

TEST_CASE("response due times", "[domain][business-hours]") {
    BusinessCalendar cal;  // Mon-Fri 09:00-17:00 UTC
    SeverityTargets t;
    // Thursday 2026-11-26 10:00 UTC
    CHECK(iso(responseDue(utc(2026, 11, 26, 10, 0), t.a, cal)) == "2026-11-26 12:00");  // around the clock
    CHECK(iso(responseDue(utc(2026, 11, 26, 10, 0), t.b, cal)) == "2026-11-26 14:00");
    CHECK(iso(responseDue(utc(2026, 11, 26, 15, 0), t.b, cal)) == "2026-11-27 11:00");  // 2 h today, 2 h Friday
    CHECK(iso(responseDue(utc(2026, 11, 26, 10, 0), t.c, cal)) == "2026-11-27 10:00");
    // Friday 16:00 + 4 business hours → Monday 12:00
    CHECK(iso(responseDue(utc(2026, 11, 27, 16, 0), t.b, cal)) == "2026-11-30 12:00");
    // Saturday night severity A: still 2 wall-clock hours
    CHECK(iso(responseDue(utc(2026, 11, 28, 23, 0), t.a, cal)) == "2026-11-29 01:00");
    // before opening: counts from 09:00
    CHECK(iso(responseDue(utc(2026, 11, 26, 6, 0), t.b, cal)) == "2026-11-26 13:00");
    // a holiday is skipped
    cal.holidays.insert("2026-11-30");
    CHECK(iso(responseDue(utc(2026, 11, 27, 16, 0), t.b, cal)) == "2026-12-01 12:00");
}

TEST_CASE("business hours in a local offset", "[domain][business-hours]") {
    BusinessCalendar cal;
    cal.utcOffsetMinutes = 7 * 60;  // Vietnam
    SeverityTargets t;
    // 2026-11-26 02:00 UTC = 09:00 local: 4 business hours → 13:00 local = 06:00 UTC
    CHECK(iso(responseDue(utc(2026, 11, 26, 2, 0), t.b, cal)) == "2026-11-26 06:00");
    CHECK(formatLocal(utc(2026, 11, 26, 6, 0), cal) == "2026-11-26 13:00 (UTC+07:00)");
    CHECK(parseUtcOffset("+07:00") == 420);
    CHECK(parseUtcOffset("-05:30") == -330);
    CHECK_FALSE(parseUtcOffset("Asia/Ho_Chi_Minh"));
}

TEST_CASE("case numbers", "[domain][requests]") {
    CHECK(formatCaseNumber(2026, 123) == "SR-2026-000123");
    CHECK(formatCaseNumber(2026, 1234567) == "SR-2026-1234567");
    CHECK(findCaseNumber("Re: [SR-2026-000123] printer on fire") == std::optional<std::string>("SR-2026-000123"));
    CHECK_FALSE(findCaseNumber("Re: your contract"));
    // Against the pattern itself (std::regex, fine on short texts), on random subjects
    // made of its own characters: the first match, or none, alike.
    const std::regex re(R"(SR-\d{4}-\d{6,})");
    const std::string alphabet = "SR-0123 ";
    std::mt19937 rng(13);
    int found = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text(rng() % 30, ' ');
        for (auto& c : text) c = alphabet[rng() % alphabet.size()];
        if (round % 4 == 0) text.insert(rng() % (text.size() + 1), "SR-" + std::to_string(1000 + rng() % 9000) + "-");
        std::smatch m;
        const std::optional<std::string> expected =
            std::regex_search(text, m, re) ? std::optional<std::string>(m.str()) : std::nullopt;
        if (expected) ++found;
        INFO("subject: '" << text << "'");
        REQUIRE(findCaseNumber(text) == expected);
    }
    CHECK(found > 20);  // the subjects did hold case numbers
    // A million digits after the prefix: std::regex recursed once per digit.
    const std::string huge = "Re: SR-2026-" + std::string(1000000, '7');
    CHECK(findCaseNumber(huge) == std::optional<std::string>(huge.substr(4)));
}
