// deliver over several SMTP connections (issue 13, item 3) against the fixture's real
// Postfix + Dovecot: with delivery.connections = 4 every Message-ID reaches the Dovecot
// Maildir once, the summary equals the outbox, all four connections carried mail, and
// each recipient's mails reached Postfix in their queue order (Postfix's log); with one
// of the four connections cut in the middle of DATA (tests/faults/fault_proxy.py
// --only) the run goes on over the others and a reopened one, and nothing is lost.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/Process.h>

#include "store/database.h"
#include "store/outbox.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

const std::vector<std::string> kUsers = {"bob", "carol", "dave", "erin", "frank", "grace"};

bool canConnect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

struct Queue {
    smtest::MailServers s;
    smtest::TempDir dir;
    std::unique_ptr<sm::store::Database> db;
    std::string tag;
    int n;

    /// n mails, round-robin to kUsers, each over 1 KB (so a cut after 300 bytes of
    /// DATA falls inside the first mail of the cut connection).
    explicit Queue(int count) : n(count) {
        db = sm::store::Database::open(smtest::testDatabaseUrl(dir));
        db->migrate();
        tag = "conn." + std::to_string(sm::store::Database::nowSeconds()) + "." +
              std::to_string(reinterpret_cast<std::uintptr_t>(&dir) % 100000);
        sm::store::Outbox outbox(*db);
        sm::store::Transaction tx(*db);
        for (int i = 0; i < n; ++i) {
            const std::string to = kUsers[static_cast<std::size_t>(i) % kUsers.size()] + "@example.test";
            sm::store::OutboxRow row;
            row.messageId = "<" + tag + "." + std::to_string(i) + "@supportmail.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {to};
            row.bytes = "From: support@example.test\r\nTo: " + to + "\r\nSubject: mail " + std::to_string(i) +
                        "\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: " + row.messageId +
                        "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
            for (int line = 0; line < 16; ++line) row.bytes += "mail " + std::to_string(i) + std::string(70, '.') + "\r\n";
            outbox.enqueue(row);
        }
        tx.commit();
    }

    int scalar(const std::string& sql) {
        int v = 0;
        db->session() << sql, into(v), now;
        return v;
    }

    /// deliver's summary equals what the outbox committed.
    void summaryMatchesOutbox(const std::string& out) {
        std::smatch m;
        REQUIRE(std::regex_search(out, m, std::regex(R"(deliver: (\d+) sent, (\d+) to retry, (\d+) parked)")));
        CHECK(std::stoi(m[1]) == scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'"));
        CHECK(std::stoi(m[2]) == scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts > 0"));
        CHECK(std::stoi(m[3]) == scalar("SELECT COUNT(*) FROM outbox WHERE state = 'parked'"));
    }

    /// Times each of this queue's Message-IDs is in the users' Maildirs, once Postfix
    /// has handed all n to Dovecot (or the deadline passed).
    std::map<std::string, int> received() {
        std::map<std::string, int> seen;
        for (int tries = 0; tries < 600; ++tries) {
            seen.clear();
            for (const auto& u : kUsers)
                for (const char* sub : {"/new", "/cur"})
                    for (const auto& file : smtest::listFiles(s.env.stateDir + "/mail/" + u + "/Maildir" + sub)) {
                        const std::string text = smtest::readFile(file);
                        const auto at = text.find("Message-ID: <" + tag + ".");
                        if (at == std::string::npos) continue;
                        seen[text.substr(at + 12, text.find('>', at) - at - 11)]++;
                    }
            if (seen.size() >= static_cast<std::size_t>(n)) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return seen;
    }

    void everyMailOnce() {
        auto seen = received();
        CHECK(seen.size() == static_cast<std::size_t>(n));
        int doubled = 0;
        for (const auto& [id, times] : seen) doubled += times > 1;
        CHECK(doubled == 0);
    }
};

/// "mails per connection: a, b, c, d" from deliver's log (--verbose).
std::vector<int> mailsPerConnection(const std::string& err) {
    std::smatch m;
    std::vector<int> counts;
    if (!std::regex_search(err, m, std::regex(R"(mails per connection: ([0-9, ]+))"))) return counts;
    const std::string list = m[1];
    const std::regex number("[0-9]+");
    for (std::sregex_iterator it(list.begin(), list.end(), number), end; it != end; ++it)
        counts.push_back(std::stoi(it->str()));
    return counts;
}

}  // namespace

TEST_CASE("deliver over 4 connections: each mail reaches the real Dovecot once, in order per recipient",
          "[integration][connections]") {
    Queue q(240);
    const std::string conf = q.s.smtpConfig(q.dir, "delivery.connections = 4\ndelivery.batch = 50\n");
    const auto logBefore = smtest::readFile(q.s.env.stateDir + "/logs/postfix.log").size();
    auto r = smtest::runSupportmail({"--config", conf, "--verbose", "deliver"}, q.s.auth());
    INFO(r.out << r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0));
    REQUIRE(r.exitCode == 0);
    CHECK(r.out.find("deliver: 240 sent, 0 to retry, 0 parked") != std::string::npos);
    q.summaryMatchesOutbox(r.out);
    CHECK(q.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == q.n);

    // All four connections carried mail, and together exactly the n mails.
    const auto counts = mailsPerConnection(r.err);
    REQUIRE(counts.size() == 4);
    int total = 0;
    for (int c : counts) {
        CHECK(c > 0);
        total += c;
    }
    CHECK(total == q.n);

    q.everyMailOnce();

    // Postfix's cleanup logs each Message-ID as it takes the mail in: for each
    // recipient, its mails arrived in queue order (mail i goes to user i % 6).
    const std::string log = smtest::readFile(q.s.env.stateDir + "/logs/postfix.log").substr(logBefore);
    std::map<int, int> lastOfUser;  // user -> last mail number seen
    int seen = 0, outOfOrder = 0;
    const std::regex idLine("message-id=<" + q.tag + R"(\.([0-9]+)@)");
    for (std::sregex_iterator it(log.begin(), log.end(), idLine), end; it != end; ++it) {
        const int i = std::stoi((*it)[1]);
        const int user = i % static_cast<int>(kUsers.size());
        auto last = lastOfUser.find(user);
        if (last != lastOfUser.end() && last->second > i) ++outOfOrder;
        lastOfUser[user] = i;
        ++seen;
    }
    CHECK(seen == q.n);
    CHECK(outOfOrder == 0);
}

TEST_CASE("deliver over 4 connections: one connection cut in the middle of DATA loses nothing",
          "[integration][connections][faults]") {
    Queue q(120);
    const int proxyPort = q.s.env.smtpPort + 710;  // inside the build's port range (base + 735)
    REQUIRE_FALSE(canConnect(proxyPort));
    // The proxy's first connection is the probe below that finds it listening; the
    // third, deliver's second, is cut after 300 bytes of its first mail's DATA.
    Poco::Process::Args args = {smtest::sourceDir() + "/tests/faults/fault_proxy.py", "--listen",
                                std::to_string(proxyPort), "--upstream", std::to_string(q.s.env.smtpPort),
                                "--fault", "cut-data", "--bytes", "300", "--only", "3"};
    auto proxy = Poco::Process::launch("/usr/bin/python3", args);
    struct Stop {
        Poco::ProcessHandle& h;
        ~Stop() {
            Poco::Process::kill(h);
            h.wait();
        }
    } stop{proxy};
    bool listening = false;
    for (int i = 0; i < 100 && !(listening = canConnect(proxyPort)); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(listening);

    // Plain SMTP through the proxy (it must see the DATA to cut it).
    const std::string conf = smtest::writeTestConfig(
        q.dir, "smtp://127.0.0.1:" + std::to_string(proxyPort) + "/supportmail.test",
        "transport.username = support\ntransport.timeout = 5\ndelivery.connections = 4\ndelivery.batch = 30\n");
    auto r = smtest::runSupportmail({"--config", conf, "--verbose", "deliver"}, q.s.auth());
    INFO(r.out << r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0));
    // The others and the reopened connection carried on: the run ends normally.
    CHECK(r.exitCode == 0);
    q.summaryMatchesOutbox(r.out);
    CHECK(q.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == q.n - 1);
    CHECK(q.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1") == 1);
    CHECK(r.err.find("broke") != std::string::npos);
    CHECK(r.err.find("reopening it for its next mail") != std::string::npos);

    // The cut mail is retried later (here at once, straight to Postfix): every mail once.
    q.db->session() << "UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued'", now;
    auto again = smtest::runSupportmail({"--config", q.s.smtpConfig(q.dir, "delivery.connections = 4\n"), "deliver"},
                                        q.s.auth());
    INFO(again.out << again.err);
    CHECK(again.exitCode == 0);
    CHECK(again.out.find("deliver: 1 sent, 0 to retry, 0 parked") != std::string::npos);
    q.everyMailOnce();
}
