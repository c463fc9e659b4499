// Store mechanics the jobs rely on: savepoints inside a group transaction (process
// commits a page of messages at once and drops only a message that failed).
#include <catch2/catch.hpp>

#include <Poco/Data/Session.h>

#include "store/database.h"
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
