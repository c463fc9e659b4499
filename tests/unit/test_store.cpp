// Store mechanics the jobs rely on: savepoints inside a group transaction (process
// commits a page of messages at once and drops only a message that failed), and the
// statements kept prepared on both engines.
#include <catch2/catch.hpp>

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Session.h>

#include "store/database.h"
#include "store/inbound.h"
#include "support/test_support.h"

using namespace Poco::Data::Keywords;

TEST_CASE("a savepoint drops one step of a group transaction and keeps the others", "[store]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    db->session() << "CREATE TABLE steps (n INTEGER)", now;
    auto count = [&](sm::store::Database& d) {
        int n = 0;
        d.session() << "SELECT COUNT(*) FROM steps", into(n), now;
        return n;
    };
    {
        sm::store::Transaction tx(*db);
        for (int i = 0; i < 5; ++i) {
            sm::store::Savepoint step(*db, "step");
            db->session() << db->sql("INSERT INTO steps VALUES (?)"), bind(i), now;
            if (i == 2) step.rollback();  // this one failed
            else step.release();
        }
        {
            sm::store::Savepoint abandoned(*db, "step");  // an exception would leave it like this
            db->session() << "INSERT INTO steps VALUES (99)", now;
        }
        auto other = sm::store::Database::open(smtest::testDatabaseUrl(dir));
        CHECK(count(*other) == 0);  // nothing visible before the commit
        tx.commit();
    }
    CHECK(count(*db) == 4);
    int two = -1, ninetyNine = -1;
    db->session() << "SELECT COUNT(*) FROM steps WHERE n = 2", into(two), now;
    db->session() << "SELECT COUNT(*) FROM steps WHERE n = 99", into(ninetyNine), now;
    CHECK(two == 0);
    CHECK(ninetyNine == 0);

    {
        // A group that never commits (a crash) leaves nothing.
        sm::store::Transaction tx(*db);
        sm::store::Savepoint step(*db, "step");
        db->session() << "INSERT INTO steps VALUES (7)", now;
        step.release();
    }
    CHECK(count(*db) == 4);
}

// Kept statements (Database::cached) are the process path's on both engines: what
// goes in through them comes back the same, and they run again with new values.
TEST_CASE("kept statements store and return any bytes and run again with new values", "[store]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    sm::store::Inbound inbound(*db);
    std::string every;  // every byte value, NUL and invalid UTF-8 included
    for (int i = 0; i < 256; ++i) every += static_cast<char>(i);
    std::vector<std::int64_t> ids;
    {
        sm::store::Transaction tx(*db);
        for (int i = 0; i < 3; ++i) {
            sm::store::InboundRow row;
            row.source = "maildir:/x";
            row.sourceKey = "k" + std::to_string(i);
            row.messageId = "<m" + std::to_string(i) + "@x>";
            row.sha256 = sm::store::sha256Hex(every + std::to_string(i));
            row.raw = every + std::to_string(i);
            row.size = static_cast<std::int64_t>(row.raw.size());
            ids.push_back(inbound.insert(row));
        }
        tx.commit();
    }
    REQUIRE(ids.size() == 3);
    CHECK(ids[0] < ids[1]);
    CHECK(ids[1] < ids[2]);
    CHECK(inbound.known("maildir:/x", 0, "k1", "none"));
    CHECK_FALSE(inbound.known("maildir:/x", 0, "k9", "none"));
    CHECK(inbound.known("maildir:/x", 0, "k9", sm::store::sha256Hex(every + "2")));
    std::string raw = "left over";
    for (int i = 0; i < 3; ++i) {
        REQUIRE(inbound.rawInto(ids[static_cast<std::size_t>(i)], raw));
        CHECK(raw == every + std::to_string(i));
    }
    CHECK_FALSE(inbound.rawInto(ids.back() + 100, raw));
    auto page = inbound.pending(0, 10);
    REQUIRE(page.size() == 3);
    CHECK(page[1].messageId == "<m1@x>");
    CHECK(page[1].raw.empty());  // the bytes are read one message at a time
    {
        sm::store::Transaction tx(*db);
        CHECK(inbound.finish(ids[1], "done", "request", "a@x", "accepted"));
        CHECK_FALSE(inbound.finish(ids[1], "done", "request", "a@x", "again"));  // only a pending row changes
        tx.commit();
    }
    CHECK(inbound.pending(0, 10).size() == 2);
    CHECK(inbound.processedWithMessageId("<m1@x>", ids[2]) == ids[1]);
    CHECK_FALSE(inbound.processedWithMessageId("<m2@x>", ids[0]));
}

TEST_CASE("the statements run per row and per mail find their rows through their indexes (SQLite)", "[store]") {
    // On SQLite the planner's choice does not depend on the rows present, so the plan
    // of an empty store is the plan of a full one (PostgreSQL's depends on statistics:
    // not checked here). Each index named was made for its statement (migrations
    // 7-10); a statement reworded so that its index no longer serves it fails here.
    smtest::TempDir dir;
    auto db = sm::store::Database::open("sqlite:" + dir.file("plans.db"));
    db->migrate();
    auto plan = [&](const std::string& sql) {
        Poco::Data::Statement st(db->session());
        st << "EXPLAIN QUERY PLAN " + sql;
        st.execute();
        Poco::Data::RecordSet rs(st);
        std::string out;
        for (bool more = rs.moveFirst(); more; more = rs.moveNext()) out += rs[3].convert<std::string>() + "\n";
        return out;
    };
    // process: each sender's replies of the last hour (the literal pattern is what
    // lets the partial index serve it), from the index alone.
    CHECK_THAT(plan("SELECT COUNT(*) FROM outbox WHERE recipients = 'a@example.test' AND created_at >= 5 "
                    "AND kind LIKE 'reply%'"),
               Catch::Contains("USING COVERING INDEX outbox_reply_limit (recipients=? AND created_at>?)"));
    // process: a contract's balance, before each debit.
    CHECK_THAT(plan("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = 5"),
               Catch::Contains("USING COVERING INDEX ledger_balance (contract_ref=?)"));
    // activate: the next group of pending renewals.
    CHECK_THAT(plan("SELECT id, partner_id FROM renewals WHERE state = 'pending' AND id > 5 ORDER BY id LIMIT 10"),
               Catch::Contains("USING INDEX renewals_pending (id>?)"));
    // deliver: the next page of queued mail.
    CHECK_THAT(plan("SELECT id FROM outbox INDEXED BY outbox_queued WHERE state = 'queued' AND "
                    "next_attempt_at <= 5 AND id > 0 ORDER BY id LIMIT 10"),
               Catch::Contains("USING INDEX outbox_queued (id>?)"));
    // process: an earlier handled copy of a request (its Message-ID among handled mail).
    CHECK_THAT(plan("SELECT id FROM inbound WHERE message_id = '<m@x>' AND id <> 5 AND state IN ('done', "
                    "'duplicate') ORDER BY id LIMIT 1"),
               Catch::Contains("USING COVERING INDEX inbound_message_state (message_id=? AND state=?)"));
}
