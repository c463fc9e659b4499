// Job leases and `supportmail status`, with the real binary: a run that finds its
// job's lease held exits 73 and does nothing; two real processes overlap and one of
// them backs off; a killed holder's lease expires and the next run proceeds; the
// status JSON reports the queue the test built.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <regex>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>

#include "app/lease_guard.h"
#include "store/database.h"
#include "store/leases.h"
#include "support/test_support.h"

using smtest::runSupportmail;
using namespace Poco::Data::Keywords;

namespace {

using smtest::today;

/// A directory with a configuration (transport: transportUrl or the spool), the
/// sample partners and a gold and a silver renewal due today, imported.
struct Setup {
    smtest::TempDir dir;
    std::string spool = dir.file("spool");
    std::string conf;
    std::string dbUrl = "sqlite:" + dir.file("supportmail.db");

    explicit Setup(const std::string& transportUrl = "", const std::string& extra = "",
                   const std::string& renewalLines = "") {
        conf = smtest::writeTestConfig(dir, transportUrl.empty() ? "maildir:" + spool : transportUrl, extra);
        std::string renewals = dir.file("renewals.csv");
        smtest::writeFile(renewals, "partner_id,benefit,renewal_date,location_id\n4648141,gold," + today() +
                                        ",\n5102233,silver," + today() + ",\n" + renewalLines);
        REQUIRE(runSupportmail({"--config", conf, "import-partners", smtest::writeSamplePartners(dir)}).exitCode == 0);
        REQUIRE(runSupportmail({"--config", conf, "import-renewals", renewals}).exitCode == 0);
    }

    /// The same database and everything else, with the spool as transport.
    std::string spoolConfig() const {
        std::string text = smtest::readFile(conf);
        text = std::regex_replace(text, std::regex("\ntransport\\.url = [^\n]*\n"),
                                  "\ntransport.url = maildir:" + spool + "\n");
        std::string path = dir.file("spool.properties");
        smtest::writeFile(path, text);
        return path;
    }

    std::unique_ptr<sm::store::Database> db() const { return sm::store::Database::open(dbUrl); }
};

/// A supportmail process started in the background; its output read when it ends.
struct Background {
    Poco::Pipe outPipe, errPipe;
    std::unique_ptr<Poco::ProcessHandle> handle;
    std::optional<int> exitCode;

    explicit Background(const std::vector<std::string>& args) {
        Poco::Process::Args pargs(args.begin(), args.end());
        handle = std::make_unique<Poco::ProcessHandle>(
            Poco::Process::launch(SUPPORTMAIL_BINARY, pargs, std::string(), nullptr, &outPipe, &errPipe));
    }
    bool running() {
        if (exitCode) return false;
        int c = handle->tryWait();  // reaps it once it has ended
        if (c == -1) return true;
        exitCode = c;
        return false;
    }
    /// Waits at most `seconds`; kills the process if it is still running then.
    smtest::RunResult finish(int seconds) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (running() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (running()) {
            Poco::Process::kill(*handle);
            exitCode = handle->wait();
        }
        smtest::RunResult result;
        result.exitCode = *exitCode;
        Poco::PipeInputStream os(outPipe), es(errPipe);
        Poco::StreamCopier::copyToString(os, result.out);
        Poco::StreamCopier::copyToString(es, result.err);
        return result;
    }
};

/// Polls until someone holds the lease on job (true) or `seconds` pass (false).
bool waitForLease(sm::store::Database& db, const std::string& job, int seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        if (sm::store::Leases(db).held(job)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

std::int64_t count(sm::store::Database& db, const std::string& sql) {
    std::int64_t n = 0;
    db.session() << sql, into(n), now;
    return n;
}

/// An SMTP "server" that lets clients connect (into the kernel's backlog) and
/// never greets: a deliver run against it holds its lease until hangUp(), which
/// from then on accepts each connection and closes it at once.
struct SilentServer {
    Poco::Net::ServerSocket socket{Poco::Net::SocketAddress("127.0.0.1", 0)};
    std::atomic<bool> stop{false};
    std::thread closer;

    ~SilentServer() {
        stop = true;
        if (closer.joinable()) closer.join();
    }
    std::string url() const { return "smtp://127.0.0.1:" + std::to_string(socket.address().port()); }
    void hangUp() {
        closer = std::thread([this] {
            while (!stop) {
                if (!socket.poll(Poco::Timespan(0, 50000), Poco::Net::Socket::SELECT_READ)) continue;
                socket.acceptConnection().close();
            }
        });
    }
};

}  // namespace

TEST_CASE("Leases: acquire, renew, release and take-over after expiry", "[ops][lease][store]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    sm::store::Leases leases(*db);
    CHECK(leases.acquire("deliver", "a:1:x", 30));
    CHECK(leases.acquire("deliver", "a:1:x", 30));  // the holder's own again: fine
    CHECK_FALSE(leases.acquire("deliver", "b:2:y", 30));
    CHECK(leases.acquire("activate", "b:2:y", 30));  // another job is independent
    REQUIRE(leases.held("deliver"));
    CHECK(leases.held("deliver")->holder == "a:1:x");
    CHECK(leases.renew("deliver", "a:1:x", 30));
    CHECK_FALSE(leases.renew("deliver", "b:2:y", 30));
    leases.release("deliver", "b:2:y");  // not b's: nothing happens
    CHECK(leases.held("deliver"));
    leases.release("deliver", "a:1:x");
    CHECK_FALSE(leases.held("deliver"));
    CHECK(leases.acquire("deliver", "b:2:y", 30));

    // Expired: the next holder takes it over; the old one cannot renew.
    db->session() << "UPDATE leases SET expires_at = expires_at - 100 WHERE job = 'deliver'", now;
    CHECK_FALSE(leases.held("deliver"));
    CHECK(leases.all().size() == 2);
    CHECK(leases.acquire("deliver", "c:3:z", 30));
    CHECK_FALSE(leases.renew("deliver", "b:2:y", 30));
    CHECK(leases.held("deliver")->holder == "c:3:z");

    auto holder = sm::store::makeLeaseHolder();
    CHECK(std::regex_match(holder, std::regex("[^:]+:[0-9]+:[0-9a-f]{16}")));
    CHECK(holder != sm::store::makeLeaseHolder());
}

TEST_CASE("LeaseGuard renews its lease while it lives, releases it, and notices a take-over", "[ops][lease][store]") {
    smtest::TempDir dir;
    const std::string url = smtest::testDatabaseUrl(dir);
    auto db = sm::store::Database::open(url);
    db->migrate();
    sm::store::Leases leases(*db);
    auto& log = Poco::Logger::get("test_ops");
    {
        sm::app::LeaseGuard guard(url, "activate", log, 3);  // renewed every second
        REQUIRE(guard.acquired());
        auto first = leases.held("activate");
        REQUIRE(first);
        CHECK(first->holder == guard.holder());
        sm::app::LeaseGuard second(url, "activate", log, 3);
        CHECK_FALSE(second.acquired());
        REQUIRE(second.heldBy());
        CHECK(second.heldBy()->holder == guard.holder());
        std::this_thread::sleep_for(std::chrono::milliseconds(4500));  // past the first expiry
        auto later = leases.held("activate");
        REQUIRE(later);
        CHECK(later->holder == guard.holder());
        CHECK(later->expiresAt > first->expiresAt);
        CHECK_FALSE(guard.lost());
    }
    CHECK(leases.all().empty());  // released

    sm::app::LeaseGuard guard(url, "deliver", log, 3);
    REQUIRE(guard.acquired());
    // It stalls past its expiry (simulated) and another run takes over.
    db->session() << "UPDATE leases SET expires_at = expires_at - 100", now;
    REQUIRE(leases.acquire("deliver", "other:2:x", 60));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(guard.lost());
    CHECK(leases.held("deliver")->holder == "other:2:x");  // not renewed, not released by the old one
}

TEST_CASE("a run whose job's lease is held exits 73 and does nothing", "[ops][lease]") {
    Setup s;
    REQUIRE(runSupportmail({"--config", s.conf, "activate"}).exitCode == 0);
    auto db = s.db();
    sm::store::Leases leases(*db);
    REQUIRE(leases.acquire("deliver", "test:1", 30));

    auto blocked = runSupportmail({"--config", s.conf, "deliver"});
    CHECK(blocked.exitCode == 73);
    CHECK(blocked.err.find("supportmail deliver: another run holds the lease (holder test:1, until ") !=
          std::string::npos);
    CHECK(blocked.err.find("); exiting\n") != std::string::npos);
    CHECK(blocked.out.empty());
    CHECK(smtest::listFiles(s.spool + "/new").empty());
    CHECK(count(*db, "SELECT COUNT(*) FROM job_runs WHERE job = 'deliver'") == 0);
    CHECK(leases.held("deliver")->holder == "test:1");  // untouched

    // Other jobs are not blocked by deliver's lease.
    CHECK(runSupportmail({"--config", s.conf, "activate"}).exitCode == 0);

    leases.release("deliver", "test:1");
    auto ok = runSupportmail({"--config", s.conf, "deliver"});
    CHECK(ok.exitCode == 0);
    CHECK(ok.out.find("2 sent") != std::string::npos);
    CHECK(smtest::listFiles(s.spool + "/new").size() == 2);
    // The run recorded its holder and released the lease.
    std::string holder;
    db->session() << "SELECT holder FROM job_runs WHERE job = 'deliver'", into(holder), now;
    CHECK(std::regex_match(holder, std::regex("[^:]+:[0-9]+:[0-9a-f]{16}")));
    CHECK(leases.all().empty());
}

TEST_CASE("two overlapping deliver processes: one runs, the other exits 73", "[ops][lease]") {
    SilentServer server;
    Setup s(server.url(), "transport.connect_timeout = 30\ntransport.timeout = 30\n");
    REQUIRE(runSupportmail({"--config", s.conf, "activate"}).exitCode == 0);
    auto db = s.db();

    // The first run connects to a server that never answers: it holds the lease.
    Background first({"--config", s.conf, "deliver"});
    REQUIRE(waitForLease(*db, "deliver", 20));
    REQUIRE(first.running());

    auto second = runSupportmail({"--config", s.conf, "deliver"});
    CHECK(second.exitCode == 73);
    CHECK(second.err.find("supportmail deliver: another run holds the lease (holder ") != std::string::npos);

    // The server goes away: the first run ends (temporary failure, mail kept) and
    // gives the lease back.
    server.hangUp();
    auto r1 = first.finish(60);
    CHECK(r1.exitCode == 75);
    CHECK_FALSE(sm::store::Leases(*db).held("deliver"));
    CHECK(count(*db, "SELECT COUNT(*) FROM outbox WHERE state = 'queued'") == 2);
    CHECK(count(*db, "SELECT COUNT(*) FROM job_runs WHERE job = 'deliver'") == 1);

    // And the next run proceeds (it sends what is due; a mail the first run tried
    // waits for its retry time).
    auto third = runSupportmail({"--config", s.spoolConfig(), "deliver"});
    CHECK(third.exitCode == 0);
    CHECK(third.out.rfind("deliver: ", 0) == 0);
    CHECK(count(*db, "SELECT COUNT(*) FROM job_runs WHERE job = 'deliver'") == 2);
}

TEST_CASE("a killed holder's lease is taken over, another machine's lease expires", "[ops][lease]") {
    SilentServer server;
    Setup s(server.url(), "transport.connect_timeout = 30\ntransport.timeout = 30\n");
    REQUIRE(runSupportmail({"--config", s.conf, "activate"}).exitCode == 0);
    auto db = s.db();

    Background victim({"--config", s.conf, "deliver"});
    REQUIRE(waitForLease(*db, "deliver", 20));
    // Killed once its run is recorded (the lease is taken a moment before the row is
    // written; a slow build can stretch that moment).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (count(*db, "SELECT COUNT(*) FROM job_runs WHERE job = 'deliver'") == 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(count(*db, "SELECT COUNT(*) FROM job_runs WHERE job = 'deliver'") == 1);
    auto lease = sm::store::Leases(*db).held("deliver");
    REQUIRE(lease);
    Poco::Process::kill(*victim.handle);  // SIGKILL: no release, no clean-up
    victim.finish(10);
    CHECK(sm::store::Leases(*db).held("deliver"));  // the row outlives its process

    // Its process is gone from this machine: the next run takes the lease over at once.
    auto next = runSupportmail({"--config", s.spoolConfig(), "deliver"});
    CHECK(next.exitCode == 0);
    CHECK(next.out.find("2 sent") != std::string::npos);
    CHECK(sm::store::Leases(*db).all().empty());
    // The killed run's history row stays 'running' with no end: visible in status.
    std::string outcome;
    db->session() << "SELECT outcome FROM job_runs WHERE job = 'deliver' ORDER BY id LIMIT 1", into(outcome), now;
    CHECK(outcome == "running");

    // A lease of another machine cannot be checked for life: it blocks until it expires.
    db->session() << "INSERT INTO leases (job, holder, acquired_at, expires_at) VALUES ('deliver', "
                     "'other-host.example:4242:00ff00ff00ff00ff', ?, ?)",
        bind(sm::store::Database::nowSeconds()), bind(sm::store::Database::nowSeconds() + 60), now;
    auto blocked = runSupportmail({"--config", s.spoolConfig(), "deliver"});
    CHECK(blocked.exitCode == 73);
    CHECK(blocked.err.find("holder other-host.example:4242") != std::string::npos);
    db->session() << "UPDATE leases SET expires_at = ? WHERE job = 'deliver'",
        bind(sm::store::Database::nowSeconds() - 1), now;
    auto after = runSupportmail({"--config", s.spoolConfig(), "deliver"});
    CHECK(after.exitCode == 0);
}

TEST_CASE("status --json reports the queue depths, last runs and leases", "[ops][status]") {
    smtest::TempDir inboxDir;
    std::string inbox = inboxDir.path() + "/Maildir";
    for (const char* sub : {"", "/new", "/cur", "/tmp"}) ::mkdir((inbox + sub).c_str(), 0700);
    smtest::writeFile(inbox + "/new/1700000001.M1P1.host",
                      "From: someone@example.org\r\nTo: support@example.test\r\nSubject: hello\r\n"
                      "Message-ID: <status-test-1@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
                      "Hello.\r\n");
    Setup s("", "inbound.support.url = maildir:" + inbox + "\n", "4648141,scs," + today() + ",\n");
    auto act = runSupportmail({"--config", s.conf, "activate"});
    REQUIRE(act.exitCode == 0);
    auto db = s.db();
    REQUIRE(count(*db, "SELECT COUNT(*) FROM outbox WHERE state = 'queued'") == 3);
    // One parked, one waiting for a retry in an hour, one due.
    db->session() << "UPDATE outbox SET state = 'parked', attempts = 1, last_reply = '550 no' "
                     "WHERE id = (SELECT MIN(id) FROM outbox)", now;
    db->session() << "UPDATE outbox SET attempts = 1, next_attempt_at = ? WHERE id = (SELECT MAX(id) FROM outbox)",
        bind(sm::store::Database::nowSeconds() + 3600), now;
    auto fetch = runSupportmail({"--config", s.conf, "fetch"});
    REQUIRE(fetch.exitCode == 0);
    REQUIRE(sm::store::Leases(*db).acquire("process", "test:1", 30));

    auto st = runSupportmail({"--config", s.conf, "status", "--json"});
    REQUIRE(st.exitCode == 0);
    auto root = Poco::JSON::Parser().parse(st.out).extract<Poco::JSON::Object::Ptr>();
    auto in = root->getObject("inbound");
    CHECK(in->getValue<int>("pending") == 1);
    CHECK(in->getValue<int>("quarantined") == 0);
    CHECK(in->getValue<int>("done") == 0);
    auto out = root->getObject("outbox");
    CHECK(out->getValue<int>("due") == 1);
    CHECK(out->getValue<int>("retrying") == 1);
    CHECK(out->getValue<int>("parked") == 1);
    CHECK(out->getValue<int>("queued") == 2);
    CHECK(out->getValue<int>("sent") == 0);

    auto jobs = root->getArray("jobs");
    std::map<std::string, Poco::JSON::Object::Ptr> byJob;
    for (std::size_t i = 0; i < jobs->size(); ++i) {
        auto j = jobs->getObject(static_cast<unsigned>(i));
        byJob[j->getValue<std::string>("job")] = j;
    }
    REQUIRE(byJob.count("activate"));
    CHECK(byJob["activate"]->getValue<std::string>("outcome") == "ok");
    CHECK(byJob["activate"]->getObject("counts")->getValue<int>("activated") == 3);
    CHECK_FALSE(byJob["activate"]->getValue<std::string>("holder").empty());
    REQUIRE(byJob.count("fetch"));
    CHECK(byJob["fetch"]->getObject("counts")->getValue<int>("fetched") == 1);
    CHECK(byJob.count("import-partners"));
    CHECK(byJob.count("import-renewals"));
    CHECK_FALSE(byJob.count("deliver"));

    auto leases = root->getArray("leases");
    REQUIRE(leases->size() == 1);
    CHECK(leases->getObject(0)->getValue<std::string>("job") == "process");
    CHECK(leases->getObject(0)->getValue<std::string>("holder") == "test:1");
    CHECK_FALSE(leases->getObject(0)->getValue<bool>("expired"));

    // The same for humans.
    auto text = runSupportmail({"--config", s.conf, "status"});
    REQUIRE(text.exitCode == 0);
    CHECK(text.out.find("inbound: 1 pending, 0 quarantined") != std::string::npos);
    CHECK(text.out.find("outbox:  1 due, 1 retrying, 1 parked, 2 queued, 0 sent") != std::string::npos);
    CHECK(text.out.find("held by test:1 until ") != std::string::npos);
}
