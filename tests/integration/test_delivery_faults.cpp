// deliver against an SMTP server that goes silent after the final "." (a stuck
// content filter): a small server in the test on 127.0.0.1 (an ephemeral port)
// greets and answers up to DATA, reads the mail, then answers nothing more, QUIT
// included. deliver must give up after transport.timeout, keep the mail for a
// retry, and end at once: no wait on the dead connection's QUIT while it holds
// the job lease.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <Poco/Data/Session.h>

#include "store/database.h"
#include "support/test_support.h"

using namespace Poco::Data::Keywords;

namespace {

/// Answers 220, EHLO/HELO, MAIL, RCPT and DATA like a server would, then reads
/// the mail and never says another word. Counts the mails whose final "." it read.
class SilentAfterDotServer {
public:
    SilentAfterDotServer() {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(listener_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_, 8) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~SilentAfterDotServer() {
        stop_ = true;
        thread_.join();
        ::close(listener_);
    }
    int port() const { return port_; }
    int dotsRead() const { return dots_; }

private:
    void serve() {
        std::vector<int> clients;
        std::vector<std::string> buffers;
        std::vector<bool> inData, silent;
        while (!stop_) {
            std::vector<pollfd> fds{{listener_, POLLIN, 0}};
            for (int c : clients) fds.push_back({c, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
            if (fds[0].revents & POLLIN) {
                const int c = ::accept(listener_, nullptr, nullptr);
                if (c >= 0) {
                    say(c, "220 silent.test ESMTP\r\n");
                    clients.push_back(c);
                    buffers.emplace_back();
                    inData.push_back(false);
                    silent.push_back(false);
                }
            }
            // Only the clients this poll watched: one accepted just now has no pollfd yet.
            for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
                if (!(fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                char buf[4096];
                const ssize_t n = ::read(clients[i], buf, sizeof buf);
                if (n <= 0) {  // the client went away: forget it
                    ::close(clients[i]);
                    clients[i] = -1;
                    continue;
                }
                if (silent[i]) continue;  // reads everything, answers nothing
                buffers[i].append(buf, static_cast<std::size_t>(n));
                for (;;) {
                    if (inData[i]) {
                        const auto end = buffers[i].find("\r\n.\r\n");
                        if (end == std::string::npos) break;
                        ++dots_;
                        silent[i] = true;  // the stuck content filter
                        break;
                    }
                    const auto eol = buffers[i].find("\r\n");
                    if (eol == std::string::npos) break;
                    std::string line = buffers[i].substr(0, eol);
                    buffers[i].erase(0, eol + 2);
                    for (auto& ch : line) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                    if (line.rfind("EHLO", 0) == 0) say(clients[i], "250-silent.test\r\n250 8BITMIME\r\n");
                    else if (line.rfind("DATA", 0) == 0) {
                        say(clients[i], "354 go ahead\r\n");
                        inData[i] = true;
                        buffers[i].insert(0, "\r\n");  // the mail may end right after DATA's line
                    } else say(clients[i], "250 ok\r\n");
                }
            }
            for (std::size_t i = clients.size(); i-- > 0;)
                if (clients[i] < 0) {
                    clients.erase(clients.begin() + static_cast<long>(i));
                    buffers.erase(buffers.begin() + static_cast<long>(i));
                    inData.erase(inData.begin() + static_cast<long>(i));
                    silent.erase(silent.begin() + static_cast<long>(i));
                }
        }
        for (int c : clients) ::close(c);
    }
    static void say(int fd, const std::string& text) {
        (void)!::write(fd, text.data(), text.size());
    }

    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> dots_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE("deliver against a server silent after the final dot ends within transport.timeout and keeps the mail",
          "[integration][faults]") {
    SilentAfterDotServer server;
    smtest::TempDir dir;
    const int timeout = 3;
    const std::string conf = smtest::writeTestConfig(dir, "smtp://127.0.0.1:" + std::to_string(server.port()),
                                                     "transport.timeout = " + std::to_string(timeout) + "\n");
    auto run = [&](const std::vector<std::string>& args) {
        std::vector<std::string> a = {"--config", conf};
        a.insert(a.end(), args.begin(), args.end());
        return smtest::runSupportmail(a);
    };
    REQUIRE(run({"import-partners", smtest::writeSamplePartners(dir)}).exitCode == 0);
    const std::string renewals = dir.file("renewals.csv");
    smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + smtest::today() + "\n");
    REQUIRE(run({"import-renewals", renewals}).exitCode == 0);
    REQUIRE(run({"activate"}).exitCode == 0);  // queues the ID mail
    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    int queued = 0;
    db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 0", into(queued), now;
    REQUIRE(queued >= 1);

    const auto started = std::chrono::steady_clock::now();
    const auto r = run({"deliver"});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    INFO(r.out << r.err << "took " << seconds << " s");
    CHECK(server.dotsRead() == 1);
    // The server was lost mid-transaction: "temporary" (75), the rest left queued.
    CHECK(r.exitCode == 75);
    CHECK(seconds >= timeout - 0.5);
    CHECK(seconds < timeout + 2);  // before the fix: timeout + 120 s in QUIT
    // Retried later, neither sent nor lost.
    int sent = 0, retried = 0, untouched = 0;
    std::string reply;
    db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'sent'", into(sent), now;
    db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1 AND next_attempt_at > "
                     "strftime('%s','now')",
        into(retried), now;
    db->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 0", into(untouched), now;
    db->session() << "SELECT last_reply FROM outbox WHERE attempts = 1", into(reply), now;
    CHECK(sent == 0);
    CHECK(retried == 1);
    CHECK(untouched == queued - 1);
    CHECK(reply.find("imeout") != std::string::npos);
    // The lease is free again: the next deliver runs (nothing due but the untouched rows, same server).
    const auto again = std::chrono::steady_clock::now();
    const auto r2 = run({"deliver"});
    const double seconds2 = std::chrono::duration<double>(std::chrono::steady_clock::now() - again).count();
    INFO(r2.out << r2.err);
    CHECK(r2.exitCode != 73);
    CHECK(seconds2 < timeout + 2);
}
