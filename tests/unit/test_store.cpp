// Store mechanics the jobs rely on: savepoints inside a group transaction (process
// commits a page of messages at once and drops only a message that failed), and the
// statements kept prepared on both engines.
#include <catch2/catch.hpp>

#include <set>

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Session.h>

#include "store/database.h"
#include "store/inbound.h"
#include "store/outbox.h"
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
    const bool pg = db->dialect() == sm::store::Dialect::PostgreSQL;
    {
        sm::store::Transaction tx(*db);  // on PostgreSQL the page is claimed in it
        auto page = inbound.pending(0, 10);
        REQUIRE(page.size() == 3);
        CHECK(page[1].messageId == "<m1@x>");
        for (std::size_t i = 0; i < 3; ++i) {
            // SQLite: the bytes are read one message at a time. PostgreSQL: a small
            // message's come with the page, and whether its Message-ID was processed.
            CHECK(page[i].raw == (pg ? every + std::to_string(i) : std::string()));
            CHECK(page[i].earlierProcessed == (pg ? 0 : -1));
        }
    }
    {
        sm::store::Transaction tx(*db);
        CHECK(inbound.finish(ids[1], "done", "request", "a@x", "accepted"));
        CHECK_FALSE(inbound.finish(ids[1], "done", "request", "a@x", "again"));  // only a pending row changes
        // The same Message-ID again, in a message too large to come with a page.
        sm::store::InboundRow copy;
        copy.source = "maildir:/x";
        copy.sourceKey = "k3";
        copy.messageId = "<m1@x>";
        copy.raw = std::string(static_cast<std::size_t>(sm::store::Inbound::kBytesWithPage) + 1, 'x');
        copy.sha256 = sm::store::sha256Hex(copy.raw);
        copy.size = static_cast<std::int64_t>(copy.raw.size());
        ids.push_back(inbound.insert(copy));
        // And once more, small: the second row of a page with that Message-ID.
        copy.sourceKey = "k4";
        copy.raw = "x";
        copy.sha256 = sm::store::sha256Hex(copy.raw);
        copy.size = 1;
        ids.push_back(inbound.insert(copy));
        tx.commit();
    }
    {
        sm::store::Transaction tx(*db);
        auto page = inbound.pending(0, 10);
        REQUIRE(page.size() == 4);
        CHECK(page[0].id == ids[0]);
        CHECK(page[2].id == ids[3]);
        CHECK(page[2].raw.empty());  // too large: rawInto() when it is handled
        CHECK(page[2].earlierProcessed == (pg ? ids[1] : -1));
        CHECK(page[0].earlierProcessed == (pg ? 0 : -1));
        // Handling the row before it makes the page's answer stale: it is to ask again.
        CHECK(page[3].id == ids[4]);
        CHECK(page[3].raw == (pg ? "x" : ""));
        CHECK(page[3].earlierProcessed == -1);
    }
    REQUIRE(inbound.rawInto(ids[3], raw));
    CHECK(raw.size() == static_cast<std::size_t>(sm::store::Inbound::kBytesWithPage) + 1);
    CHECK(inbound.processedWithMessageId("<m1@x>", ids[2]) == ids[1]);
    CHECK(inbound.processedWithMessageId("<m1@x>", ids[3]) == ids[1]);
    CHECK_FALSE(inbound.processedWithMessageId("<m2@x>", ids[0]));
}

// Migration 11 moved a mail's bytes out of the rows whose state changes (an UPDATE
// rewrote them with the row): a site upgraded keeps every received mail and every
// queued and sent mail's bytes, an ID mail (queued without bytes) gets no bytes row,
// and the rows written afterwards, by every insert path, read back whole, before and
// after their state changes.
TEST_CASE("an upgraded store keeps every mail's bytes, and the state changes leave them as they were", "[store]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    REQUIRE(db->migrate(10) == 10);
    const std::string answer = "Subject: case 1\r\nMessage-ID: <a@x>\r\n\r\nYour case is open.\r\n";
    db->session() << "INSERT INTO outbox (message_id, kind, envelope_from, recipients, bytes, next_attempt_at, "
                     "created_at, state) VALUES ('<a@x>', 'reply:accepted', 's@x', 'r@x', '" + answer + "', 1, 1, "
                     "'sent'), ('<b@x>', 'id_mail', 's@x', 'p@x', '', 1, 1, 'queued')",
        now;
    const std::string request = "Subject: help\r\nMessage-ID: <r@x>\r\n\r\nAccess ID: 0123456789\r\n";
    const std::string asBytes = db->dialect() == sm::store::Dialect::SQLite ? "CAST('" + request + "' AS BLOB)"
                                                                            : "convert_to('" + request + "', 'UTF8')";
    db->session() << "INSERT INTO inbound (source, source_key, message_id, sha256, size, raw, fetched_at) VALUES "
                     "('maildir:/x', 'k1', '<r@x>', 'h', " + std::to_string(request.size()) + ", " + asBytes + ", 1)",
        now;
    CHECK(db->migrate() == sm::store::Database::latestSchemaVersion() - 10);
    sm::store::Inbound inbound(*db);
    std::string raw;
    const auto received = inbound.pending(0, 10);
    REQUIRE(received.size() == 1);
    REQUIRE(inbound.rawInto(received[0].id, raw));
    CHECK(raw == request);
    {
        sm::store::Transaction tx(*db);
        CHECK(inbound.finish(received[0].id, "done", "request", "a@x", "accepted"));
        tx.commit();
    }
    REQUIRE(inbound.rawInto(received[0].id, raw));
    CHECK(raw == request);
    CHECK(inbound.raw(received[0].id) == request);
    sm::store::Outbox outbox(*db);
    auto count = [&](const std::string& sql) {
        std::int64_t n = -1;
        db->session() << sql, into(n), now;
        return n;
    };
    REQUIRE(outbox.byMessageId("<a@x>"));
    CHECK(outbox.byMessageId("<a@x>")->bytes == answer);
    CHECK(outbox.byMessageId("<a@x>")->state == "sent");
    REQUIRE(outbox.byMessageId("<b@x>"));
    CHECK(outbox.byMessageId("<b@x>")->bytes.empty());
    CHECK(count("SELECT COUNT(*) FROM outbox_bytes") == 1);

    // Every way in: with its id, sent without waiting (process's answers), without bytes.
    std::string every;  // every 7-bit byte value but NUL: the mails we compose are 7-bit (a TEXT column)
    for (int i = 1; i < 128; ++i) every += static_cast<char>(i);
    sm::store::OutboxRow row;
    row.kind = "reply:accepted";
    row.envelopeFrom = "support@x";
    row.recipients = {"r@x"};
    std::int64_t withId = 0;
    {
        sm::store::Transaction tx(*db);
        row.messageId = "<c@x>";
        row.bytes = "c " + every;
        withId = outbox.enqueue(row);
        row.messageId = "<d@x>";
        row.bytes = "d " + every;
        outbox.enqueuePipelined(row);
        row.messageId = "<e@x>";
        row.bytes.clear();
        outbox.enqueuePipelined(row);
        tx.commit();
    }
    CHECK(outbox.byId(withId)->bytes == "c " + every);
    CHECK(outbox.byMessageId("<d@x>")->bytes == "d " + every);
    CHECK(outbox.byMessageId("<e@x>")->bytes.empty());
    CHECK(count("SELECT COUNT(*) FROM outbox_bytes") == 3);
    const auto due = outbox.due(sm::store::Database::nowSeconds() + 10, 10);
    REQUIRE(due.size() == 4);  // <b>, <c>, <d>, <e>
    CHECK(due[1].bytes == "c " + every);
    CHECK(due[2].bytes == "d " + every);

    // The marks change the state and leave the bytes; an ID mail keeps its headers after sending.
    {
        sm::store::Transaction tx(*db);
        outbox.markSent(withId, "250 ok");
        outbox.markRetry(outbox.byMessageId("<d@x>")->id, 1, 99, "451 later");
        auto idMail = *outbox.byMessageId("<b@x>");
        idMail.bytes = "Subject: your IDs\r\n\r\nAccess ID 0123456789\r\n";
        outbox.markSent(idMail.id, "250 ok");
        outbox.forgetIds(idMail);
        tx.commit();
    }
    CHECK(outbox.byId(withId)->state == "sent");
    CHECK(outbox.byId(withId)->bytes == "c " + every);
    CHECK(outbox.byMessageId("<d@x>")->bytes == "d " + every);
    CHECK(outbox.byMessageId("<d@x>")->lastReply == "451 later");
    const std::string kept = outbox.byMessageId("<b@x>")->bytes;
    CHECK(kept.rfind("Subject: your IDs\r\n", 0) == 0);
    CHECK(kept.find("0123456789") == std::string::npos);
    CHECK(count("SELECT COUNT(*) FROM outbox_bytes") == 4);
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
    // process: an earlier handled copy of a request (its Message-ID among handled mail),
    // from the index alone and without a temporary b-tree: no sort, no table for an IN
    // list (each was a zeroed page at every run, 15 % of process's main thread).
    const std::string duplicate = "SELECT COALESCE(MIN(id), 0) FROM inbound WHERE message_id = '<m@x>' AND id <> 5 "
                                  "AND +state IN ('done', 'duplicate')";
    CHECK_THAT(plan(duplicate), Catch::Contains("USING COVERING INDEX inbound_message_state (message_id=?)"));
    CHECK_THAT(plan(duplicate), !Catch::Contains("TEMP B-TREE"));
    Poco::Data::Statement st(db->session());
    st << "EXPLAIN " + duplicate;
    st.execute();
    Poco::Data::RecordSet rs(st);
    int ephemeral = 0, steps = 0;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext(), ++steps)
        if (rs[1].convert<std::string>().find("Ephemeral") != std::string::npos ||
            rs[1].convert<std::string>().find("Sorter") != std::string::npos)
            ++ephemeral;
    CHECK(steps > 5);
    CHECK(ephemeral == 0);
}

TEST_CASE("PostgreSQL: serial values drawn a block at a time stay unique across connections and increase in each",
          "[.pg][store]") {
    smtest::TempDir dir;
    auto a = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    a->migrate();
    auto b = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    REQUIRE(a->dialect() == sm::store::Dialect::PostgreSQL);
    std::set<std::int64_t> all;
    std::int64_t lastA = 0, lastB = 0;
    const int n = 2 * sm::store::Database::kSerialBlock + 3;  // past two blocks on each
    for (int i = 0; i < n; ++i) {
        const std::int64_t x = a->nextSerial("incidents", "id");
        const std::int64_t y = b->nextSerial("incidents", "id");
        CHECK(x > lastA);
        CHECK(y > lastB);
        lastA = x;
        lastB = y;
        all.insert(x);
        all.insert(y);
    }
    CHECK(all.size() == static_cast<std::size_t>(2 * n));
    // What a third connection draws next lies past everything handed out or held.
    auto c = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    CHECK(c->nextSerial("incidents", "id") > *all.rbegin());
}

TEST_CASE("PostgreSQL: a kept answer comes back with the statement after it, one dropped with its query is not read",
          "[.pg][store]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    REQUIRE(db->dialect() == sm::store::Dialect::PostgreSQL);
    {
        auto kept = db->cached("SELECT CAST(? AS BIGINT) + 1");
        kept.bind(1, std::int64_t{41}).sendKeepingAnswer();
        auto after = db->cached("SELECT CAST(? AS BIGINT) * 2");
        REQUIRE(after.bind(1, std::int64_t{21}).step());
        CHECK(after.int64(0) == 42);
        REQUIRE(kept.step());
        CHECK(kept.int64(0) == 42);
        CHECK_FALSE(kept.step());  // one row
    }
    {
        // Its query gone before the answer came: the answer is dropped, and the next use
        // of the same statement runs it afresh.
        {
            auto dropped = db->cached("SELECT CAST(? AS BIGINT) + 1");
            dropped.bind(1, std::int64_t{1}).sendKeepingAnswer();
        }
        auto other = db->cached("SELECT 7");
        REQUIRE(other.step());
        auto again = db->cached("SELECT CAST(? AS BIGINT) + 1");
        REQUIRE(again.bind(1, std::int64_t{99}).step());
        CHECK(again.int64(0) == 100);
    }
    {
        // Dropped while a later query of the same statement is on its way: each answer
        // goes to its own query (the later one must not read the dropped one's).
        {
            auto dropped = db->cached("SELECT CAST(? AS BIGINT) + 1");
            dropped.bind(1, std::int64_t{1}).sendKeepingAnswer();
        }
        auto later = db->cached("SELECT CAST(? AS BIGINT) + 1");
        later.bind(1, std::int64_t{99}).sendKeepingAnswer();
        db->flush();
        REQUIRE(later.step());
        CHECK(later.int64(0) == 100);
    }
    {
        // A copy of a statement (cached(text, instance)) keeps its own answer beside
        // the original's.
        auto original = db->cached("SELECT CAST(? AS BIGINT) + 1");
        auto copy = db->cached("SELECT CAST(? AS BIGINT) + 1", 1);
        original.bind(1, std::int64_t{1}).sendKeepingAnswer();
        copy.bind(1, std::int64_t{2}).sendKeepingAnswer();
        db->flush();
        REQUIRE(original.step());
        CHECK(original.int64(0) == 2);
        REQUIRE(copy.step());
        CHECK(copy.int64(0) == 3);
    }
}

TEST_CASE("PostgreSQL: answers sent before a sync are read without the work sent after it, whose error comes back "
          "with the next round trip",
          "[.pg][store]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    REQUIRE(db->dialect() == sm::store::Dialect::PostgreSQL);
    sm::store::Transaction tx(*db);
    auto ahead = db->cached("SELECT CAST(? AS BIGINT) + 1", 1);
    ahead.bind(1, std::int64_t{41}).sendKeepingAnswer();
    db->syncSent();
    // Sent after the sync, and refused by the server (a name may not be NULL).
    db->cached("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, NULL, 0)")
        .bind(1, std::int64_t{999999})
        .send();
    db->pushUnconfirmed();
    db->collectSynced();  // the refusal is not among these answers
    REQUIRE(ahead.step());
    CHECK(ahead.int64(0) == 42);
    db->collectSynced();  // nothing synced is left: nothing to do
    CHECK_THROWS_AS(db->flush(), sm::store::UnconfirmedWorkFailed);
}
