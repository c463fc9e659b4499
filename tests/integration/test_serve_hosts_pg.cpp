// Two hosts on one PostgreSQL (issue 12, item 4): two `supportmail serve` daemons,
// each in its own working directory under its own host name (SUPPORTMAIL_HOST), with
// the same configuration (database, mailbox, transport) run every job against the
// real Postfix + Dovecot. Requests arrive in the support mailbox (Dovecot serves them
// over IMAP); both daemons fetch, process and deliver; the answers come back through
// Postfix into the requester's Dovecot Maildir. Mid-run one host is killed with
// SIGKILL while it holds deliver claims: the other takes them over once they expire
// (delivery.claim_seconds, short here) and goes on alone. Afterwards each request was
// stored and handled once, each answer received once (Message-IDs counted in the
// Maildir), every balance equals its ledger. PostgreSQL only ("integration-pg:").
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/Process.h>
#include <Poco/Timestamp.h>

#include "store/contracts.h"
#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kClaimSeconds = 6;

/// One "host": a serve daemon with its own working directory and host name.
struct Host {
    std::string name;
    smtest::TempDir dir;
    std::string log;
    int pid = -1;
    bool ended = false;

    explicit Host(std::string hostName) : name(std::move(hostName)) {}
    ~Host() {
        if (pid > 0 && !ended) {
            ::kill(pid, SIGKILL);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
    }

    void start(const std::string& configText) {
        const std::string conf = dir.file("supportmail.properties");  // the same file on every host
        smtest::writeFile(conf, configText);
        log = dir.file("serve.log");
        Poco::Process::Env env;
        env["SUPPORTMAIL_SMTP_PASSWORD"] = "support-pw";
        env["SUPPORTMAIL_IMAP_PASSWORD"] = "support-pw";
        env["SUPPORTMAIL_HOST"] = name;
        auto handle = Poco::Process::launch(
            "/bin/sh", {"-c", std::string("exec '") + SUPPORTMAIL_BINARY + "' --config '" + conf + "' serve >'" +
                                  dir.file("serve.out") + "' 2>'" + log + "'"},
            dir.path(), nullptr, nullptr, nullptr, env);
        pid = static_cast<int>(handle.id());
        REQUIRE(pid > 0);
    }

    /// Exit code once it ended within timeoutMs; -1 if it still runs, -2 if ended by a signal.
    int waitExit(int timeoutMs) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
        while (Clock::now() < deadline) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                ended = true;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -2;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return -1;
    }

    std::string logText() const { return smtest::fileExists(log) ? smtest::readFile(log) : std::string(); }
};

/// Puts a mail into a Dovecot Maildir's new/ the way a delivery agent does (written to
/// tmp/, owned by the mailbox's owner, renamed): Dovecot then serves it over IMAP.
/// False if a step failed (called from a thread: no Catch2 assertion here).
bool dropInto(const std::string& maildir, const std::string& name, const std::string& raw) {
    struct stat st {};
    if (::stat((maildir + "/new").c_str(), &st) != 0) return false;
    const std::string tmp = maildir + "/tmp/" + name;
    smtest::writeFile(tmp, raw);
    return ::chown(tmp.c_str(), st.st_uid, st.st_gid) == 0 &&
           ::rename(tmp.c_str(), (maildir + "/new/" + name).c_str()) == 0;
}

std::string requestMail(const std::string& messageId, int n, const std::string& access, const std::string& contract) {
    return "From: Alice Schmidt <alice@example.test>\r\nTo: support@example.test\r\nSubject: Cluster problem " +
           std::to_string(n) + "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: " + messageId +
           "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nAccess ID: " +
           access + "\r\nContract ID: " + contract +
           "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
           "Category: Cluster\r\nSeverity: B\r\nDescription: case " + std::to_string(n) + "\r\n";
}

/// A header's value in a stored mail ("" when absent); the name as the composer writes it.
std::string header(const std::string& text, const std::string& name) {
    const auto end = text.find("\r\n\r\n") == std::string::npos ? text.find("\n\n") : text.find("\r\n\r\n");
    const std::string head = "\n" + text.substr(0, end);
    const auto at = head.find("\n" + name + ": ");
    if (at == std::string::npos) return "";
    const auto from = at + name.size() + 3;
    return head.substr(from, head.find_first_of("\r\n", from) - from);
}

}  // namespace

TEST_CASE("serve on two hosts against one PostgreSQL: every request answered once, a killed host's claims taken over",
          "[.pg][serve][hosts]") {
    ::setenv("MAIL_ENV_FILE", SUPPORTMAIL_MAIL_ENV_FILE, 0);  // the MAILPG fixture's mail servers
    smtest::MailServers s;
    s.reset({"support", "alice", "ops"});
    smtest::TempDir site;  // owns the shared database (dropped last, after both hosts)
    const std::string conf = s.smtpConfig(
        site, s.supportInbound() +
                  "mail.admin = ops@example.test\n"
                  "schedule.fetch_process = 1\nschedule.deliver = 1\nschedule.activate =\nschedule.expire =\n"
                  "delivery.claim_seconds = " + std::to_string(kClaimSeconds) + "\ndelivery.batch = 25\n"
                  "process.replies_per_sender_per_hour = 100000\n");
    auto runOk = [&](const std::vector<std::string>& args) {
        std::vector<std::string> a = {"--config", conf};
        a.insert(a.end(), args.begin(), args.end());
        auto r = smtest::runSupportmail(a, s.authSmtpAndImap());
        INFO(args[0] << ": " << r.out << r.err);
        REQUIRE(r.exitCode == 0);
    };
    runOk({"import-partners", smtest::writeSamplePartners(site)});
    smtest::writeFile(site.file("renewals.csv"), "partner_id,benefit,renewal_date\n4648141,gold," + smtest::today() + "\n");
    runOk({"import-renewals", site.file("renewals.csv")});
    runOk({"activate"});
    auto db = sm::store::Database::open(smtest::testDatabaseUrl(site));
    REQUIRE(db->dialect() == sm::store::Dialect::PostgreSQL);
    std::string access, contract;
    std::int64_t gold = 0;
    db->session() << "SELECT id, access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(gold),
        into(access), into(contract), now;
    REQUIRE(gold > 0);
    db->session() << "UPDATE outbox SET state = 'sent' WHERE kind = 'id_mail'", now;  // not under test here
    auto count = [&](const std::string& sql) {
        std::int64_t n = 0;
        db->session() << sql, into(n), now;
        return n;
    };
    const std::string configText = smtest::readFile(conf);

    const std::string supportMaildir = s.env.stateDir + "/mail/support/Maildir";
    const std::string tag = "hosts." + std::to_string(Poco::Timestamp().epochMicroseconds());
    std::vector<std::string> requestIds;
    int dropFailures = 0;
    auto sendRequests = [&](int n) {
        for (int i = 0; i < n; ++i) {
            const int k = static_cast<int>(requestIds.size());
            requestIds.push_back("<" + tag + "." + std::to_string(k) + "@partner.example>");
            dropFailures += !dropInto(supportMaildir, tag + "." + std::to_string(k) + ".test",
                                      requestMail(requestIds.back(), k, access, contract));
        }
    };

    Host a("host-a"), b("host-b");
    a.start(configText);
    b.start(configText);
    // The requests trickle in (10 every 300 ms) so that both hosts find some at each fetch.
    std::thread sender([&] {
        for (int i = 0; i < 15; ++i) {
            sendRequests(10);
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
    });

    // Kill host-a while it holds deliver claims: stop it, look, and either kill it or let it go on.
    const std::string aClaims = "FROM outbox WHERE state = 'queued' AND claimed_by LIKE 'host-a:%' AND claimed_until > 0";
    std::int64_t orphaned = 0, aClaimedUntil = 0;
    const auto lookUntil = Clock::now() + std::chrono::seconds(90);
    while (Clock::now() < lookUntil) {
        REQUIRE(::kill(a.pid, SIGSTOP) == 0);
        orphaned = count("SELECT COUNT(*) " + aClaims + " AND claimed_until >= " +
                         std::to_string(sm::store::Database::nowSeconds()));
        // Mid-run: once both hosts have delivered something.
        if (orphaned > 0 &&
            count("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND claimed_by LIKE 'host-a:%'") > 0 &&
            count("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND claimed_by LIKE 'host-b:%'") > 0)
            break;
        orphaned = 0;
        REQUIRE(::kill(a.pid, SIGCONT) == 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    INFO("host-a log:\n" << a.logText() << "\nhost-b log:\n" << b.logText());
    if (orphaned > 0) ::kill(a.pid, SIGKILL);
    else ::kill(a.pid, SIGCONT);
    const auto killedAt = Clock::now();
    sender.join();
    REQUIRE(dropFailures == 0);
    REQUIRE(orphaned > 0);
    CHECK(a.waitExit(5000) == -2);
    std::vector<std::int64_t> orphanIds;
    db->session() << "SELECT id " + aClaims + " ORDER BY id", into(orphanIds), now;
    aClaimedUntil = count("SELECT MAX(claimed_until) " + aClaims);
    REQUIRE(!orphanIds.empty());

    // host-b goes on alone: more requests arrive after the death.
    sendRequests(40);
    const std::string orphanList = [&] {
        std::string l;
        for (auto id : orphanIds) l += (l.empty() ? "" : ",") + std::to_string(id);
        return l;
    }();
    double takeoverSeconds = -1;
    const auto drainUntil = Clock::now() + std::chrono::seconds(150);
    const auto total = static_cast<std::int64_t>(requestIds.size());
    while (Clock::now() < drainUntil) {
        if (takeoverSeconds < 0 &&
            count("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND id IN (" + orphanList + ")") ==
                static_cast<std::int64_t>(orphanIds.size()))
            takeoverSeconds = std::chrono::duration<double>(Clock::now() - killedAt).count();
        if (takeoverSeconds >= 0 && count("SELECT COUNT(*) FROM inbound WHERE state <> 'pending'") == total &&
            count("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == 0 &&
            count("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply:%'") >= total)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    WARN("host-a killed holding " << orphanIds.size() << " deliver claims; host-b had sent them all "
                                  << takeoverSeconds << " s later (delivery.claim_seconds = " << kClaimSeconds << ")");
    REQUIRE(takeoverSeconds >= 0);
    // The claims were honoured until they expired: host-b sent none of those mails before.
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE id IN (" + orphanList + ") AND sent_at < " +
                std::to_string(aClaimedUntil)) == 0);
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE id IN (" + orphanList + ") AND claimed_by LIKE 'host-b:%'") ==
          static_cast<std::int64_t>(orphanIds.size()));

    REQUIRE(::kill(b.pid, SIGTERM) == 0);
    CHECK(b.waitExit(30000) == 0);
    const std::string logB = b.logText();
    CHECK(logB.find("serve: stopped") != std::string::npos);
    CHECK(logB.find("failed (exit") == std::string::npos);

    // The store: each request stored once and handled, one answer each, all sent.
    CHECK(count("SELECT COUNT(*) FROM inbound") == total);
    CHECK(count("SELECT COUNT(DISTINCT message_id) FROM inbound") == total);
    CHECK(count("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 0);
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'reply:%'") == total);
    {
        std::vector<std::string> replies;
        db->session() << "SELECT b.bytes FROM outbox o JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.kind LIKE 'reply:%'", into(replies), now;
        std::map<std::string, int> answers;
        for (const auto& bytes : replies) answers[header(bytes, "In-Reply-To")]++;
        int answeredOnce = 0;
        for (const auto& id : requestIds) answeredOnce += answers.count(id) && answers[id] == 1;
        CHECK(answeredOnce == total);
    }
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == 0);
    // Both hosts did the work before the kill (deliver keeps the claimer on a sent mail).
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND claimed_by LIKE 'host-a:%'") > 0);
    CHECK(count("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND claimed_by LIKE 'host-b:%'") > 0);
    // The balance: each incident debited once, the balance the sum of its ledger, never negative.
    const std::int64_t incidents = count("SELECT COUNT(*) FROM incidents");
    CHECK(incidents > 0);
    CHECK(count("SELECT COUNT(*) FROM ledger WHERE entry_key LIKE 'debit:inbound:%'") == incidents);
    const int balance = sm::store::Contracts(*db).balance(gold);
    CHECK(balance >= 0);
    CHECK(balance == count("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = " + std::to_string(gold)));
    CHECK(balance == count("SELECT incidents_granted FROM contracts WHERE id = " + std::to_string(gold)) - incidents);

    // What alice received through Postfix and Dovecot: each request answered once. Only a
    // mail host-a had handed to Postfix without marking it sent may arrive twice (same
    // Message-ID): at most one, and only one of host-a's claims.
    const std::string maildir = s.env.stateDir + "/mail/alice/Maildir";
    std::map<std::string, int> byRequest, byMessageId;
    for (int tries = 0; tries < 300; ++tries) {
        byRequest.clear();
        byMessageId.clear();
        for (const char* sub : {"/new", "/cur"})
            for (const auto& file : smtest::listFiles(maildir + sub)) {
                const std::string text = smtest::readFile(file);
                const std::string parent = header(text, "In-Reply-To");
                if (parent.find(tag) == std::string::npos) continue;
                byRequest[parent]++;
                byMessageId[header(text, "Message-ID")]++;
            }
        if (byRequest.size() >= requestIds.size()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(byRequest.size() == requestIds.size());
    std::set<std::string> orphanMessageIds;
    {
        std::vector<std::string> ids;
        db->session() << "SELECT message_id FROM outbox WHERE id IN (" + orphanList + ")", into(ids), now;
        orphanMessageIds.insert(ids.begin(), ids.end());
    }
    int doubled = 0, doubledElsewhere = 0;
    for (const auto& [id, times] : byMessageId) {
        if (times < 2) continue;
        ++doubled;
        doubledElsewhere += orphanMessageIds.count(id) == 0;
    }
    CHECK(doubled <= 1);
    CHECK(doubledElsewhere == 0);
    CHECK(byMessageId.size() == requestIds.size());
}
