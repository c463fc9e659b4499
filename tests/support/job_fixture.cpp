#include "support/job_fixture.h"

#include "app/config.h"

#include <catch2/catch.hpp>

#include <sstream>

#include <Poco/Data/Session.h>

#include "jobs/import_reference.h"

using namespace Poco::Data::Keywords;

namespace smtest {

JobFixture::JobFixture(const std::string& extraConfig)
    : settings(sm::app::loadSettings(writeTestConfig(dir, "maildir:" + dir.file("spool"), extraConfig))),
      db(sm::store::Database::open(settings.databaseUrl)),
      templates(settings.templatesDir) {
    db->migrate();
    auto report = sm::jobs::importPartners(*db, settings, writeSamplePartners(dir), false);
    REQUIRE(report.problems.empty());
}

void JobFixture::importRenewals(const std::string& rows) {
    std::string path = dir.file("renewals.csv");
    writeFile(path, "partner_id,benefit,renewal_date,location_id\n" + rows);
    auto report = sm::jobs::importRenewals(*db, settings, path, false);
    std::ostringstream problems;
    for (const auto& p : report.problems) problems << p.line << " " << p.field << " " << p.reason << "\n";
    INFO(problems.str());
    REQUIRE(report.problems.empty());
}

int JobFixture::count(const std::string& sql) {
    int n = 0;
    db->session() << sql, into(n), now;
    return n;
}

}  // namespace smtest
