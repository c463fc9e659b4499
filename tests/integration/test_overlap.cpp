// Jobs overlapping as cron makes them overlap, against the real Postfix +
// Dovecot with mail flowing: requests are sent in with swaks while fetch,
// process and deliver (two loops each, so a job also meets its own lease),
// activate and expire run again and again for a bounded time, and new renewals
// are imported meanwhile. Every run must end 0 or 73 (lease held), never 70 (a
// "database is locked" or any other failure); after a drain the state is
// consistent: each request stored and processed once, each incident debited
// once, every balance the sum of its ledger and never negative, every reply
// delivered. SUPPORTMAIL_OVERLAP_SECONDS lengthens the loop (default 30 s).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <Poco/Data/Session.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

using Clock = std::chrono::steady_clock;

std::string request(int n, const std::string& access, const std::string& contract) {
    return "From: Alice Schmidt <alice@example.test>\r\nTo: support@example.test\r\nSubject: Overlap problem " +
           std::to_string(n) + "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <overlap" +
           std::to_string(n) + "." + std::to_string(Poco::Timestamp().epochMicroseconds()) +
           "@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "Hello,\r\n\r\nAccess ID: " + access + "\r\nContract ID: " + contract +
           "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
           "Category: Cluster\r\nSeverity: B\r\nDescription: the cluster fails over every hour.\r\n";
}

}  // namespace

TEST_CASE("fetch, process, deliver, activate and expire overlapping in a loop with mail flowing never fail for a lock",
          "[integration][overlap]") {
    smtest::MailServers servers;
    servers.reset({"support", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "ops"});
    smtest::TempDir dir;
    const std::string conf = servers.smtpConfig(dir, servers.supportInbound() + "mail.admin = ops@example.test\n" +
                                                               "process.replies_per_sender_per_hour = 1000\n");
    const auto authEnv = servers.authSmtpAndImap();
    auto run = [&](const std::vector<std::string>& args) {
        std::vector<std::string> a = {"--config", conf};
        a.insert(a.end(), args.begin(), args.end());
        // A run takes seconds even under the sanitizers: one still going after 90 s
        // is hung, and is killed with its stacks in the failure (see runProgram).
        return smtest::runSupportmail(a, authEnv, 90);
    };
    auto runOk = [&](const std::vector<std::string>& args) {
        const auto r = run(args);
        INFO(args[0] << ": " << r.out << r.err);
        REQUIRE(r.exitCode == 0);
    };
    runOk({"import-partners", smtest::writeSamplePartners(dir)});
    const std::string today = smtest::today();
    smtest::writeFile(dir.file("r0.csv"), "partner_id,benefit,renewal_date\n4648141,gold," + today +
                                              "\n4648141,scs," + today + "\n");
    runOk({"import-renewals", dir.file("r0.csv")});
    runOk({"activate"});
    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    std::vector<std::pair<std::string, std::string>> ids;  // (access, contract) of the gold and scs contracts
    {
        std::vector<std::string> access, contract;
        db->session() << "SELECT access_id, contract_id FROM contracts ORDER BY id", into(access), into(contract), now;
        REQUIRE(access.size() == 2);
        for (std::size_t i = 0; i < access.size(); ++i) ids.emplace_back(access[i], contract[i]);
    }

    const char* env = std::getenv("SUPPORTMAIL_OVERLAP_SECONDS");
    const int seconds = env ? std::max(5, std::atoi(env)) : 30;
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);

    std::mutex mutex;
    std::map<std::string, std::map<int, int>> exits;  // job -> exit code -> runs
    std::vector<std::string> failures;
    auto loop = [&](const std::string& job) {
        while (Clock::now() < deadline) {
            const auto r = run({job});
            std::lock_guard<std::mutex> lock(mutex);
            ++exits[job][r.exitCode];
            if (r.exitCode != 0 && r.exitCode != 73) failures.push_back(job + " exit " + std::to_string(r.exitCode) +
                                                                        ": " + r.out + r.err);
        }
    };
    // The mail: a request every ~0.6 s, alternating the two contracts, and a new
    // renewal every 8 requests (activate then has a group to commit).
    std::atomic<int> sent{0};
    std::vector<std::string> sendErrors;
    std::thread sender([&] {
        int renewals = 0;
        while (Clock::now() < deadline) {
            const int n = sent + 1;
            const std::string file = dir.file("req" + std::to_string(n) + ".eml");
            smtest::writeFile(file, request(n, ids[n % 2].first, ids[n % 2].second));
            const auto r = servers.sendToSupport("alice@example.test", file);
            if (r.exitCode != 0) {
                sendErrors.push_back(r.out + r.err);
                break;
            }
            ++sent;
            if (n % 8 == 0) {
                const std::string csv = dir.file("r" + std::to_string(++renewals) + ".csv");
                // a renewal of a day before each time: each one a new row to activate
                const std::string day = Poco::DateTimeFormatter::format(
                    Poco::Timestamp() - Poco::Timespan(renewals, 0, 0, 0, 0), "%Y-%m-%d");
                smtest::writeFile(csv, "partner_id,benefit,renewal_date\n5102233,silver," + day + "\n");
                const auto imp = run({"import-renewals", csv});
                std::lock_guard<std::mutex> lock(mutex);
                ++exits["import-renewals"][imp.exitCode];
                if (imp.exitCode != 0) failures.push_back("import-renewals: " + imp.out + imp.err);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(600));
        }
    });
    std::vector<std::thread> jobs;
    for (const char* job : {"fetch", "fetch", "process", "process", "deliver", "deliver", "activate", "expire"})
        jobs.emplace_back(loop, job);
    sender.join();
    for (auto& t : jobs) t.join();

    std::ostringstream summary;
    for (const auto& [job, codes] : exits) {
        summary << job << ":";
        for (const auto& [code, n] : codes) summary << " " << n << "x" << code;
        summary << "\n";
    }
    INFO("runs by exit code:\n" << summary.str() << "requests sent: " << sent);
    WARN("overlap loop of " << seconds << " s, runs by exit code:\n" << summary.str() << "requests sent: " << sent);
    CHECK(sendErrors.empty());
    CHECK(failures.empty());
    for (const auto& f : failures) UNSCOPED_INFO(f);
    for (const char* job : {"fetch", "process", "deliver", "activate", "expire"}) CHECK(exits[job][0] > 0);
    REQUIRE(sent > 0);

    // Drain: everything sent reaches the mailbox, is fetched, processed and answered.
    REQUIRE(smtest::waitForMessages(servers.env, "support", "support-pw", static_cast<std::size_t>(sent.load()), 20000)
                .size() >= static_cast<std::size_t>(sent.load()));
    for (const char* job : {"fetch", "process", "activate", "deliver"}) runOk({job});

    auto scalar = [&](const std::string& sql) {
        std::int64_t n = -1;
        db->session() << sql, into(n), now;
        return n;
    };
    // Each request stored once and processed once.
    CHECK(scalar("SELECT COUNT(*) FROM inbound") == sent);
    CHECK(scalar("SELECT COUNT(DISTINCT message_id) FROM inbound") == sent);
    CHECK(scalar("SELECT COUNT(*) FROM inbound WHERE state = 'new'") == 0);
    CHECK(scalar("SELECT COUNT(DISTINCT inbound_ref) FROM incidents") == scalar("SELECT COUNT(*) FROM incidents"));
    CHECK(scalar("SELECT COUNT(*) FROM incidents") > 0);
    // Each incident debited once; each balance is its ledger's sum, never negative.
    CHECK(scalar("SELECT COUNT(*) FROM ledger WHERE delta < 0") == scalar("SELECT COUNT(*) FROM incidents"));
    CHECK(scalar("SELECT COUNT(*) FROM contracts c WHERE (SELECT COALESCE(SUM(delta), 0) FROM ledger l WHERE "
                 "l.contract_ref = c.id) != c.incidents_granted - (SELECT COUNT(*) FROM incidents i WHERE "
                 "i.contract_ref = c.id)") == 0);
    CHECK(scalar("SELECT COUNT(*) FROM (SELECT SUM(delta) AS b FROM ledger GROUP BY contract_ref) WHERE b < 0") == 0);
    // Every renewal activated; every mail sent once and delivered.
    CHECK(scalar("SELECT COUNT(*) FROM renewals") == 2 + (sent / 8));
    CHECK(scalar("SELECT COUNT(*) FROM renewals WHERE state = 'pending'") == 0);
    CHECK(scalar("SELECT COUNT(*) FROM contracts") == scalar("SELECT COUNT(*) FROM renewals"));
    CHECK(scalar("SELECT COUNT(*) FROM outbox WHERE state != 'sent'") == 0);
    const std::int64_t toAlice = scalar("SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%alice@example.test%'");
    const std::int64_t idMails = scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'id_mail' AND recipients LIKE "
                                        "'%alice@example.test%'");
    CHECK(idMails > 0);
    CHECK(toAlice == idMails + sent);  // one reply to each request
    CHECK(smtest::waitForMessages(servers.env, "alice", "alice-pw", static_cast<std::size_t>(toAlice), 20000).size() ==
          static_cast<std::size_t>(toAlice));
    std::string integrity;
    db->session() << "PRAGMA integrity_check", into(integrity), now;
    CHECK(integrity == "ok");
}
