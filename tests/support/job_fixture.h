// What the in-process tests of the jobs (activate, expire...) start from: a
// migrated SQLite store in a temporary directory, the project's configuration
// with a maildir spool there as the transport, the real templates and the
// sample partners imported.
#pragma once

#include <memory>
#include <string>

#include <Poco/Logger.h>

#include "config/settings.h"
#include "domain/secure_random.h"
#include "mail/templates.h"
#include "store/database.h"
#include "support/test_support.h"

namespace smtest {

struct JobFixture {
    TempDir dir;
    sm::config::Settings settings;
    std::unique_ptr<sm::store::Database> db;
    sm::mail::TemplateSet templates;
    sm::domain::SystemRandom random;
    Poco::Logger& log = Poco::Logger::get("test");

    /// extraConfig: configuration lines on top of the project's.
    explicit JobFixture(const std::string& extraConfig = "");

    /// Imports renewals, CSV rows under the header
    /// partner_id,benefit,renewal_date,location_id; requires no problems.
    void importRenewals(const std::string& rows);

    /// The whole number a query returns (a COUNT(*), a SUM...).
    int count(const std::string& sql);
};

}  // namespace smtest
