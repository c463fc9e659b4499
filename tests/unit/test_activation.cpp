// Activation against a real SQLite store (temporary file) and the real templates:
// idempotency, the ledger grant, one ID mail per contract in the same transaction,
// dry runs, Action Pack on request, renewals that cannot be activated.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <Poco/Logger.h>
#include <Poco/Data/Session.h>

#include "config/settings.h"
#include "domain/dates.h"
#include "domain/ids.h"
#include "jobs/activate.h"
#include "jobs/deliver.h"
#include "jobs/id_mail.h"
#include "jobs/import_reference.h"
#include "mail/templates.h"
#include "mail/transport.h"
#include "store/contracts.h"
#include "store/outbox.h"
#include "store/renewals.h"
#include "support/job_fixture.h"

using namespace Poco::Data::Keywords;

namespace {

struct Fixture : smtest::JobFixture {
    sm::jobs::ActivationReport run(sm::jobs::ActivationOptions opts = {}) {
        return sm::jobs::activate(*db, settings, templates, random, opts, log);
    }
};

using smtest::today;

}  // namespace

TEST_CASE("activation creates contract, ledger grant and ID mail together, and only once", "[activation]") {
    Fixture f;
    f.importRenewals("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    auto first = f.run();
    CHECK(first.activated == 2);
    CHECK(first.notActivated.empty());
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == 2);
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'") == 2);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 0);

    sm::store::Contracts contracts(*f.db);
    auto gold = contracts.ofPartner("4648141");
    REQUIRE(gold.size() == 1);
    CHECK(sm::domain::isValidAccessId(gold[0].accessId));
    CHECK(sm::domain::isValidContractId(gold[0].contractId));
    CHECK(contracts.balance(gold[0].id) == 20);
    CHECK(gold[0].expiresOn == sm::domain::addDays(today(), 395));
    CHECK(gold[0].displayName ==
          sm::domain::displayName(sm::domain::yearOf(today()), "Gold", "4648141", gold[0].accessId));
    auto silver = contracts.ofPartner("5102233");
    REQUIRE(silver.size() == 1);
    CHECK(contracts.balance(silver[0].id) == 10);

    // The ID mail carries the IDs in its (encoded) body and goes to the allowed recipients.
    sm::store::Outbox outbox(*f.db);
    auto rows = outbox.all();
    REQUIRE(rows.size() == 2);
    const auto& goldMail = rows[0].contractRef == gold[0].id ? rows[0] : rows[1];
    CHECK(goldMail.recipients == std::vector<std::string>{"alice@example.test", "bob@example.test"});

    auto second = f.run();
    CHECK(second.activated == 0);
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == 2);
    CHECK(f.count("SELECT COUNT(*) FROM outbox") == 2);
    CHECK(f.count("SELECT COUNT(*) FROM ledger") == 2);
}

TEST_CASE("a dry run reports and changes nothing", "[activation]") {
    Fixture f;
    f.importRenewals("4648141,gold," + today() + ",\n");
    sm::jobs::ActivationOptions opts;
    opts.dryRun = true;
    auto report = f.run(opts);
    CHECK(report.activated == 1);
    REQUIRE(report.dryRunLines.size() == 1);
    CHECK(report.dryRunLines[0].find("Partner Gold Support 20Pack") != std::string::npos);
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM outbox") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 1);
}

TEST_CASE("Action Pack waits for a request, the administrator activates it by partner", "[activation]") {
    Fixture f;
    f.importRenewals("7001234,action_pack," + today() + ",\n");
    auto batch = f.run();
    CHECK(batch.activated == 0);
    CHECK(batch.waitingForRequest == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == 0);

    sm::jobs::ActivationOptions opts;
    opts.partnerId = "7001234";
    auto admin = f.run(opts);
    CHECK(admin.activated == 1);
    CHECK(f.count("SELECT COUNT(*) FROM contracts WHERE plan_key = 'action_pack'") == 1);
}

TEST_CASE("a kit is activated for its location and mailed to the location primary", "[activation]") {
    Fixture f;
    f.importRenewals("4648141,competency_kit," + today() + ",CON-PAR\n");
    auto report = f.run();
    CHECK(report.activated == 1);
    sm::store::Outbox outbox(*f.db);
    auto rows = outbox.all();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].recipients.front() == "carol@example.test");
    CHECK(f.count("SELECT COUNT(*) FROM contracts WHERE location_id = 'CON-PAR'") == 1);
}

TEST_CASE("a renewal without a primary contact stays pending and is reported, an old one as overdue",
          "[activation]") {
    Fixture f;
    // Partner 9 has only a member contact.
    std::string path = f.dir.file("p9.csv");
    smtest::writeFile(path,
                      "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,"
                      "contact_country,contact_language\n"
                      "9,Nobody Primary,gold,DE,judy@example.test,Judy,member,DE,en\n");
    REQUIRE(sm::jobs::importPartners(*f.db, f.settings, path, false).problems.empty());
    std::string old = sm::domain::addDays(today(), -40);
    f.importRenewals("9,gold," + old + ",\n");
    auto report = f.run();
    CHECK(report.activated == 0);
    REQUIRE(report.notActivated.size() == 1);
    CHECK(report.notActivated[0].reason.find("hq_primary") != std::string::npos);
    REQUIRE(report.overdue.size() == 1);
    CHECK(report.overdue[0].reason.find("40 days") != std::string::npos);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 1);
}

TEST_CASE("activation commits in groups and stays unique across many renewals", "[activation]") {
    Fixture f;
    f.settings.activation.batch = 7;
    std::string rows;
    for (int d = 0; d < 30; ++d) rows += "4648141,gold," + sm::domain::addDays(today(), -d) + ",\n";
    f.importRenewals(rows);
    auto report = f.run();
    CHECK(report.activated == 30);
    CHECK(f.count("SELECT COUNT(DISTINCT access_id) FROM contracts") == 30);
    CHECK(f.count("SELECT COUNT(DISTINCT contract_id) FROM contracts") == 30);
    CHECK(f.count("SELECT COUNT(DISTINCT message_id) FROM outbox") == 30);
    CHECK(f.count("SELECT COALESCE(SUM(delta), 0) FROM ledger") == 30 * 20);
}

namespace {
// Replays scripted draws, then counts up from 1000 (fresh values): each Access ID
// takes one draw (the value, zero-padded), each Contract ID ten (a letter each: 0 → A,
// 1 → B, 2 → C of ABCDEFGHJK...).
class ScriptedRandom : public sm::domain::RandomSource {
public:
    explicit ScriptedRandom(std::vector<std::uint64_t> v) : values_(std::move(v)) {}
    std::uint64_t next64() override { return pos_ < values_.size() ? values_[pos_++] : fresh_++; }

private:
    std::vector<std::uint64_t> values_;
    std::size_t pos_ = 0;
    std::uint64_t fresh_ = 1000;
};

void script(std::vector<std::uint64_t>& v, std::uint64_t access, std::uint64_t letter) {
    v.push_back(access);
    v.insert(v.end(), 10, letter);
}
}  // namespace

TEST_CASE("a drawn ID that is taken, in the store or earlier in the group, is drawn again", "[activation]") {
    Fixture f;
    f.settings.activation.batch = 2;  // the third renewal's IDs collide with the first group's rows
    f.importRenewals("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n4648141,silver," + today() +
                     ",\n");
    std::vector<std::uint64_t> draws;
    script(draws, 1, 0);  // renewal 1: 0000000001, C-AAAAAAAAAA
    script(draws, 1, 1);  // renewal 2: Access ID taken in its own group: drawn again ...
    draws.push_back(2);   // ... as 0000000002, C-BBBBBBBBBB kept
    script(draws, 3, 0);  // renewal 3: Contract ID taken by the first group's commit: drawn again ...
    draws.insert(draws.end(), 10, 2);  // ... as C-CCCCCCCCCC, 0000000003 kept
    ScriptedRandom random(draws);
    auto report = sm::jobs::activate(*f.db, f.settings, f.templates, random, {}, f.log);
    CHECK(report.activated == 3);
    sm::store::Contracts contracts(*f.db);
    std::vector<std::pair<std::string, std::string>> ids;
    for (const auto& partner : {"4648141", "5102233"})
        for (const auto& c : contracts.ofPartner(partner)) ids.emplace_back(c.accessId, c.contractId);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::pair<std::string, std::string>>{{"0000000001", "C-AAAAAAAAAA"},
                                                                  {"0000000002", "C-BBBBBBBBBB"},
                                                                  {"0000000003", "C-CCCCCCCCCC"}});
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'") == 3);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 0);
}

TEST_CASE("a random source that repeats itself stops activation with its cause, the group rolled back",
          "[activation]") {
    Fixture f;
    f.importRenewals("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    struct Stuck : sm::domain::RandomSource {
        std::uint64_t next64() override { return 7; }
    } stuck;
    CHECK_THROWS_WITH(sm::jobs::activate(*f.db, f.settings, f.templates, stuck, {}, f.log),
                      Catch::Contains("no free Access and Contract ID after 1000 draws"));
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 2);
}

TEST_CASE("a mail that cannot be built stops activation, its group rolls back and stays pending", "[activation]") {
    Fixture f;
    f.importRenewals("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    sm::mail::TemplateSet broken(f.dir.file("no-templates"));  // id_mail missing: TemplateError
    CHECK_THROWS_AS(sm::jobs::activate(*f.db, f.settings, broken, f.random, {}, f.log), sm::mail::TemplateError);
    CHECK(f.count("SELECT COUNT(*) FROM contracts") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM ledger") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM outbox") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 2);

    auto report = f.run();
    CHECK(report.activated == 2);
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail'") == 2);
}

TEST_CASE("an ID mail is queued without its bytes and rendered at delivery, the same bytes on every attempt",
          "[activation]") {
    Fixture f;
    f.importRenewals("4648141,gold," + today() + ",\n");
    REQUIRE(f.run().activated == 1);
    auto gold = sm::store::Contracts(*f.db).ofPartner("4648141");
    REQUIRE(gold.size() == 1);
    // At rest the outbox holds neither ID: only `contracts` does.
    CHECK(f.count("SELECT COUNT(*) FROM outbox_bytes") == 0);
    CHECK(f.count("SELECT COUNT(*) FROM outbox_bytes WHERE bytes LIKE '%" + gold[0].accessId + "%' OR bytes LIKE '%" +
                  gold[0].contractId + "%'") == 0);

    auto rows = sm::store::Outbox(*f.db).all();
    REQUIRE(rows.size() == 1);
    const sm::jobs::OutboxRenderer renderer(*f.db, f.settings, f.templates);
    const std::string bytes = renderer.bytesOf(rows[0]);
    CHECK(bytes == renderer.bytesOf(rows[0]));  // a retry sends what the first attempt sent
    CHECK(bytes.find("Message-ID: " + rows[0].messageId + "\r\n") != std::string::npos);
    CHECK(bytes.find("To: Alice") != std::string::npos);
    CHECK(bytes.find("Cc: ") != std::string::npos);
    CHECK(bytes.find(gold[0].accessId) != std::string::npos);    // the body is quoted-printable,
    CHECK(bytes.find(gold[0].contractId) != std::string::npos);  // the IDs are plain ASCII in it

    // A row whose contract is gone cannot be rendered: RenderError names it.
    auto orphan = rows[0];
    orphan.contractRef = gold[0].id + 1000;
    CHECK_THROWS_AS(renderer.bytesOf(orphan), sm::jobs::RenderError);
    // A row that holds bytes is sent as it is.
    orphan.bytes = "Subject: x\r\n\r\nx\r\n";
    CHECK(renderer.bytesOf(orphan) == orphan.bytes);
}

TEST_CASE("deliver renders queued ID mails into the spool and parks one that cannot be rendered", "[activation]") {
    Fixture f;
    f.importRenewals("4648141,gold," + today() + ",\n5102233,silver," + today() + ",\n");
    REQUIRE(f.run().activated == 2);
    auto silver = sm::store::Contracts(*f.db).ofPartner("5102233");
    REQUIRE(silver.size() == 1);
    f.db->session() << f.db->sql("UPDATE contracts SET plan_key = 'no_such_plan' WHERE id = ?"), use(silver[0].id), now;

    sm::mail::TransportSettings ts;
    ts.url = "maildir:" + f.dir.file("spool");
    auto transport = sm::mail::makeTransport(ts);
    const sm::jobs::OutboxRenderer renderer(*f.db, f.settings, f.templates);
    auto report = sm::jobs::deliver(*f.db, f.settings.delivery, *transport, f.log, 0, nullptr, &renderer);
    CHECK(report.sent == 1);
    CHECK(report.parked == 1);
    CHECK(f.count("SELECT COUNT(*) FROM outbox WHERE state = 'parked' AND last_reply LIKE '%no_such_plan%'") == 1);

    auto gold = sm::store::Contracts(*f.db).ofPartner("4648141");
    REQUIRE(gold.size() == 1);
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(f.dir.file("spool") + "/new")) {
        ++files;
        std::ifstream in(e.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        CHECK(bytes.find(gold[0].accessId) != std::string::npos);
        CHECK(bytes.find(gold[0].contractId) != std::string::npos);
    }
    CHECK(files == 1);
}
