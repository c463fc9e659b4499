// Several deliver workers on PostgreSQL against the real Postfix (issue 12, item 6):
// 4 `supportmail deliver` processes, each under its own host name (SUPPORTMAIL_HOST:
// as if on 4 machines), share one outbox of 10,000 mails; one is killed with SIGKILL
// mid-run while it holds claims. Its claims are honoured until they expire
// (delivery.claim_seconds, short here), then taken over by a later run. Every mail
// reaches the Dovecot mailbox exactly once (its Message-ID counted in the Maildir);
// only a mail the killed worker had handed to Postfix without marking it sent may
// arrive twice (README "Several hosts"). PostgreSQL only: run by ctest's
// "integration-pg:" entries. SUPPORTMAIL_TEST_SCALE=F scales the 10,000 (scripts/test.sh
// runs 0.1 under the sanitizers).
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include <Poco/Data/Session.h>

#include "store/database.h"
#include "store/outbox.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {
using Clock = std::chrono::steady_clock;
constexpr int kClaimSeconds = 5;
}  // namespace

TEST_CASE("workers: 4 deliver processes send each mail to the real Postfix exactly once, a killed one's claims taken over",
          "[.pg][workers][postfix]") {
    const int n = smtest::scaled(10000);
    ::setenv("MAIL_ENV_FILE", SUPPORTMAIL_MAIL_ENV_FILE, 0);  // the MAILPG fixture's mail servers
    smtest::MailServers s;
    smtest::TempDir dir;
    const std::string conf =
        s.smtpConfig(dir, "delivery.batch = 20\ndelivery.claim_seconds = " + std::to_string(kClaimSeconds) + "\n");
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
    db->migrate();
    auto count = [&](const std::string& sql) {
        std::int64_t v = 0;
        db->session() << sql, into(v), now;
        return v;
    };
    const std::string tag = "pgw." + std::to_string(sm::store::Database::nowSeconds()) + "." +
                            std::to_string(::getpid());
    {
        sm::store::Outbox outbox(*db);
        sm::store::Transaction tx(*db);
        for (int i = 0; i < n; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<" + tag + "." + std::to_string(i) + "@supportmail.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {"ivan@example.test"};
            row.bytes = "From: support@example.test\r\nTo: ivan@example.test\r\nSubject: mail " + std::to_string(i) +
                        "\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: " + row.messageId +
                        "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nmail " +
                        std::to_string(i) + "\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }
    auto deliverAs = [&](const std::string& host) {
        auto env = s.auth();
        env.push_back("SUPPORTMAIL_HOST=" + host);
        return smtest::runSupportmail({"--config", conf, "deliver"}, env);
    };
    const auto started = Clock::now();
    std::vector<smtest::RunResult> runs(4);
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < runs.size(); ++w)
        workers.emplace_back([&, w] { runs[w] = deliverAs("deliver-" + std::to_string(w)); });

    // Kill deliver-0 mid-run while it holds a page: its pid is in its claims
    // ("host:pid:random"). Stop it, look, and kill it or let it go on.
    const std::string claims0 = "FROM outbox WHERE state = 'queued' AND claimed_by LIKE 'deliver-0:%' AND claimed_until > 0";
    int victim = 0;
    std::int64_t held = 0;
    for (auto until = Clock::now() + std::chrono::seconds(120); Clock::now() < until;) {
        std::string holder;
        db->session() << "SELECT COALESCE(MAX(claimed_by), '') FROM outbox WHERE claimed_by LIKE 'deliver-0:%'",
            into(holder), now;
        if (!holder.empty() && count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") >= n / 4) {
            victim = std::atoi(holder.c_str() + holder.find(':') + 1);
            if (victim > 0 && ::kill(victim, SIGSTOP) == 0) {
                held = count("SELECT COUNT(*) " + claims0 + " AND claimed_until >= " +
                             std::to_string(sm::store::Database::nowSeconds()));
                if (held > 0) {
                    ::kill(victim, SIGKILL);
                    break;
                }
                ::kill(victim, SIGCONT);
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& t : workers) t.join();
    const double workersSeconds = std::chrono::duration<double>(Clock::now() - started).count();
    REQUIRE(held > 0);
    std::vector<std::int64_t> orphans;
    db->session() << "SELECT id " + claims0 + " ORDER BY id", into(orphans), now;
    const std::int64_t claimedUntil = count("SELECT COALESCE(MAX(claimed_until), 0) " + claims0);
    std::string orphanList;
    for (auto id : orphans) orphanList += (orphanList.empty() ? "" : ",") + std::to_string(id);

    int sent = 0;
    for (std::size_t w = 0; w < runs.size(); ++w) {
        const auto& r = runs[w];
        INFO("deliver-" << w << ": exit " << r.exitCode << ": " << r.out << r.err);
        if (w == 0) {
            CHECK(r.exitCode != 0);  // killed
            continue;
        }
        CHECK(r.exitCode == 0);
        CHECK(r.err.empty());
        auto at = r.out.find("deliver: ");
        REQUIRE(at != std::string::npos);
        sent += std::atoi(r.out.c_str() + at + 9);
    }
    // What the killed worker held and had not sent waits for its claims to expire, then a
    // run from another host takes it over.
    const std::int64_t sentByVictim = count("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND claimed_by LIKE 'deliver-0:%'");
    CHECK(sentByVictim > 0);  // it was killed mid-run, not before it began
    const std::int64_t leftQueued = count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'");
    CHECK(leftQueued <= static_cast<std::int64_t>(orphans.size()));
    int lastRuns = 0;
    while (count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") > 0 && lastRuns < 20) {
        const auto r = deliverAs("deliver-9");
        ++lastRuns;
        INFO(r.out << r.err);
        CHECK(r.exitCode == 0);
        auto at = r.out.find("deliver: ");
        REQUIRE(at != std::string::npos);
        sent += std::atoi(r.out.c_str() + at + 9);
        if (count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") > 0)
            std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    const double takeoverSeconds =
        std::chrono::duration<double>(Clock::now() - started).count() - workersSeconds;
    WARN(n << " mails, 4 deliver processes: " << workersSeconds << " s; deliver-0 killed holding " << orphans.size()
           << " claims (" << sentByVictim << " sent before); " << leftQueued
           << " still queued when the others ended, sent " << takeoverSeconds << " s later by " << lastRuns
           << " run(s) of another host (delivery.claim_seconds = " << kClaimSeconds << ")");
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == n);
    CHECK(sent + sentByVictim == n);
    // Claims are honoured until they expire: none of the killed worker's held mails was sent
    // by another before then.
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE id IN (" + orphanList + ") AND sent_at < " +
                std::to_string(claimedUntil)) == 0);
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE id IN (" + orphanList + ") AND claimed_by LIKE 'deliver-0:%'") == 0);

    // What Postfix handed to Dovecot, counted by Message-ID in ivan's Maildir: the files
    // counted first (cheap), read once all have arrived.
    const std::string maildir = s.env.stateDir + "/mail/ivan/Maildir";
    auto ours = [&] {
        std::vector<std::string> files;
        for (const char* sub : {"/new", "/cur"})
            for (auto& f : smtest::listFiles(maildir + sub)) files.push_back(std::move(f));
        return files;
    };
    for (auto until = Clock::now() + std::chrono::seconds(300); Clock::now() < until;) {
        if (ours().size() >= static_cast<std::size_t>(n)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const double arrivedSeconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a mail sent twice arrives with the others
    std::map<std::string, int> received;
    std::vector<std::string> files;
    for (const auto& file : ours()) {
        const std::string text = smtest::readFile(file);
        const auto at = text.find("Message-ID: <" + tag + ".");
        if (at == std::string::npos) continue;
        received[text.substr(at + 12, text.find('>', at) - at - 11)]++;
        files.push_back(file);
    }
    std::set<std::string> orphanIds;
    {
        std::vector<std::string> ids;
        db->session() << "SELECT message_id FROM outbox WHERE id IN (" + orphanList + ")", into(ids), now;
        orphanIds.insert(ids.begin(), ids.end());
    }
    WARN("all in ivan's Maildir " << arrivedSeconds << " s after the workers started");
    CHECK(received.size() == static_cast<std::size_t>(n));
    int doubled = 0, doubledElsewhere = 0;
    for (const auto& [id, times] : received) {
        if (times < 2) continue;
        ++doubled;
        doubledElsewhere += orphanIds.count(id) == 0;
    }
    CHECK(doubled <= 1);
    CHECK(doubledElsewhere == 0);
    for (const auto& f : files) ::unlink(f.c_str());  // ivan's mailbox is other tests' too
}
