// Issue 11 in the store, on SQLite and (unit-pg:) PostgreSQL: the CRM file is the truth
// for each partner it lists, the schema holds one primary each, and activation gives IDs
// only to the contacts the last file listed, recording each disclosure.
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>

#include "jobs/activate.h"
#include "jobs/import_reference.h"
#include "support/job_fixture.h"

using namespace Poco::Data::Keywords;

namespace {

const char* const kHeader =
    "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,"
    "contact_language,location_id,location_name,location_country\n";

sm::jobs::ImportReport importFile(smtest::JobFixture& f, const std::string& rows, bool skipBad = false) {
    const std::string path = f.dir.file("partners2.csv");
    smtest::writeFile(path, kHeader + rows);
    return sm::jobs::importPartners(*f.db, f.settings, path, skipBad);
}

}  // namespace

TEST_CASE("a second CRM file moves hq_primary, deactivates the contact it drops, and the IDs follow it",
          "[store][trust]") {
    smtest::JobFixture f;
    // Contoso (4648141) again, without alice (the hq_primary who left); bob is hq_primary
    // now; carol keeps Paris; dave stays a member. The other partners are absent.
    auto r = importFile(f,
                        "4648141,Contoso Cloud Partners,gold,DE,bob@example.test,Bob Weber,hq_primary,DE,en,,,\n"
                        "4648141,Contoso Cloud Partners,gold,DE,carol@example.test,Carol Dupont,location_primary,FR,en,"
                        "CON-PAR,Contoso Paris,FR\n"
                        "4648141,Contoso Cloud Partners,gold,DE,dave@example.test,Dave Miller,member,GB,en,,,\n");
    REQUIRE(r.problems.empty());
    CHECK(r.contactsPromoted == 1);
    CHECK(r.contactsDemoted == 0);
    CHECK(r.contactsDeactivated == 1);
    CHECK(r.summary().find("1 promoted, 0 demoted, 1 deactivated") != std::string::npos);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE partner_id = '4648141' AND role = 'hq_primary' AND active = 1") ==
          1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'bob@example.test' AND role = 'hq_primary'") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'alice@example.test' AND active = 0 AND "
                  "deactivated_at IS NOT NULL") == 1);
    // Partners absent from the file keep their contacts.
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE partner_id = '5102233' AND active = 1") == 2);

    // Activation: the IDs go to bob alone, and the disclosure says so.
    f.importRenewals("4648141,gold," + smtest::today() + ",\n");
    auto a = sm::jobs::activate(*f.db, f.settings, f.templates, f.random, {}, f.log);
    REQUIRE(a.activated == 1);
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail' AND recipients LIKE '%alice@%'") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail' AND recipients LIKE 'bob@example.test%'") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM disclosures WHERE recipient = 'bob@example.test' AND rule = "
                  "'activation_hq_primary' AND outbox_ref IS NOT NULL") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM disclosures WHERE recipient = 'alice@example.test'") == 0);

    // The CRM lists alice again (as a member): the same row comes back, active.
    auto back = importFile(f, "4648141,Contoso Cloud Partners,gold,DE,bob@example.test,Bob Weber,hq_primary,DE,en,,,\n"
                              "4648141,Contoso Cloud Partners,gold,DE,alice@example.test,Alice Schmidt,member,DE,en,,,\n"
                              "4648141,Contoso Cloud Partners,gold,DE,carol@example.test,Carol Dupont,location_primary,"
                              "FR,en,CON-PAR,Contoso Paris,FR\n"
                              "4648141,Contoso Cloud Partners,gold,DE,dave@example.test,Dave Miller,member,GB,en,,,\n");
    REQUIRE(back.problems.empty());
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'alice@example.test' AND active = 1 AND role = "
                  "'member'") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'alice@example.test'") == 1);
}

TEST_CASE("the schema holds one active hq_primary per partner and one location_primary per location",
          "[store][trust]") {
    smtest::JobFixture f;
    auto& s = f.db->session();
    // alice is Contoso's hq_primary, carol Paris's location_primary (sample partners).
    CHECK_THROWS(s << "INSERT INTO contacts (partner_id, email, name, country, role, language) "
                      "VALUES ('4648141', 'x@example.test', 'X', 'DE', 'hq_primary', 'en')",
                 now);
    CHECK_THROWS(s << "INSERT INTO contacts (partner_id, location_id, email, name, country, role, language) "
                      "VALUES ('4648141', 'CON-PAR', 'y@example.test', 'Y', 'FR', 'location_primary', 'en')",
                 now);
    // An inactive former primary is history, not a second primary.
    CHECK_NOTHROW(s << "INSERT INTO contacts (partner_id, email, name, country, role, language, active) "
                       "VALUES ('4648141', 'z@example.test', 'Z', 'DE', 'hq_primary', 'en', 0)",
                  now);
    // A swap of two primaries in one file: demote first, then promote (no clash).
    auto r = importFile(f, "4648141,Contoso Cloud Partners,gold,DE,alice@example.test,Alice Schmidt,member,DE,en,,,\n"
                           "4648141,Contoso Cloud Partners,gold,DE,bob@example.test,Bob Weber,hq_primary,DE,en,,,\n"
                           "4648141,Contoso Cloud Partners,gold,DE,carol@example.test,Carol Dupont,location_primary,FR,"
                           "en,CON-PAR,Contoso Paris,FR\n"
                           "4648141,Contoso Cloud Partners,gold,DE,dave@example.test,Dave Miller,member,GB,en,,,\n");
    REQUIRE(r.problems.empty());
    CHECK(r.contactsPromoted == 1);
    CHECK(r.contactsDemoted == 1);
    CHECK(r.contactsDeactivated == 0);
}

TEST_CASE("a partner with a skipped line keeps its unlisted contacts, and the summary says so", "[store][trust]") {
    smtest::JobFixture f;
    // bob's line is bad (no such country): the file is not whole for Contoso.
    auto r = importFile(f,
                        "4648141,Contoso Cloud Partners,gold,DE,alice@example.test,Alice Schmidt,hq_primary,DE,en,,,\n"
                        "4648141,Contoso Cloud Partners,gold,DE,bob@example.test,Bob Weber,member,ZZZ,en,,,\n",
                        true);
    CHECK(r.skipped == 1);
    CHECK(r.contactsDeactivated == 0);
    CHECK(r.partnersNotReconciled == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE partner_id = '4648141' AND active = 1") == 4);
}

TEST_CASE("a primary named by the file takes the role from a kept holder, even one of another partner",
          "[store][trust]") {
    smtest::JobFixture f;
    // Contoso has a skipped line, so alice (its hq_primary, unlisted) is kept; the file
    // names bob hq_primary. Paris (CON-PAR, carol's) is now filed under another partner
    // with erin as its location_primary. Found by the CSV fuzzer: the one-primary indexes
    // refused the import with a constraint violation.
    auto r = importFile(f,
                        "4648141,Contoso Cloud Partners,gold,DE,bob@example.test,Bob Weber,hq_primary,DE,en,,,\n"
                        "4648141,Contoso Cloud Partners,gold,DE,zed@example.test,Zed,member,ZZZ,en,,,\n"
                        "9990001,Paris Partners,gold,FR,erin@example.test,Erin Martin,location_primary,FR,en,"
                        "CON-PAR,Contoso Paris,FR\n",
                        true);
    CHECK(r.skipped == 1);
    CHECK(r.loaded);
    CHECK(r.contactsDemoted == 2);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'alice@example.test' AND role = 'member' "
                  "AND active = 1") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'bob@example.test' AND role = 'hq_primary'") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE email = 'carol@example.test' AND role = 'member'") == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contacts WHERE location_id = 'CON-PAR' AND role = 'location_primary' "
                  "AND active = 1 AND email = 'erin@example.test'") == 1);
}
