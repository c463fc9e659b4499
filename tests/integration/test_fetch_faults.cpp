// fetch over IMAP when the connection is cut in the middle of a message's
// literal: a small proxy in the test on 127.0.0.1 (an ephemeral port) relays to
// the real Dovecot and, on its first connection, cuts both sides a few bytes
// into the second message body it relays. The summary must count what was
// committed (the first message), nothing is lost, and the next run stores the
// rest without a duplicate.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

/// Relays one connection at a time to 127.0.0.1:targetPort. The first connection
/// is cut a few bytes into the literal after the second "BODY[]" the server sends.
class CuttingProxy {
public:
    explicit CuttingProxy(int targetPort) : target_(targetPort) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(listener_ >= 0);
        sockaddr_in addr = loopback(0);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_, 4) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~CuttingProxy() {
        stop_ = true;
        thread_.join();
        ::close(listener_);
    }
    int port() const { return port_; }
    bool cut() const { return cut_; }

private:
    static sockaddr_in loopback(int port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        return a;
    }
    static void sendAll(int fd, const char* p, std::size_t n) {
        while (n > 0) {
            const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
            if (w <= 0) return;
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }
    void serve() {
        while (!stop_) {
            pollfd pl{listener_, POLLIN, 0};
            if (::poll(&pl, 1, 100) <= 0) continue;
            const int client = ::accept(listener_, nullptr, nullptr);
            if (client < 0) continue;
            const int server = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in t = loopback(target_);
            if (::connect(server, reinterpret_cast<sockaddr*>(&t), sizeof t) != 0) {
                ::close(client);
                ::close(server);
                continue;
            }
            relay(client, server, !cut_);
            ::close(client);
            ::close(server);
        }
    }
    void relay(int client, int server, bool cutThisOne) {
        std::string fromServer;  // everything the server sent on this connection
        int bodies = 0;
        std::size_t searched = 0;
        while (!stop_) {
            pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
            if (::poll(fds, 2, 100) <= 0) continue;
            char buf[16384];
            if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                const ssize_t n = ::read(client, buf, sizeof buf);
                if (n <= 0) return;
                sendAll(server, buf, static_cast<std::size_t>(n));
            }
            if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                const ssize_t n = ::read(server, buf, sizeof buf);
                if (n <= 0) return;
                if (!cutThisOne) {
                    sendAll(client, buf, static_cast<std::size_t>(n));
                    continue;
                }
                const std::size_t before = fromServer.size();
                fromServer.append(buf, static_cast<std::size_t>(n));
                for (std::size_t at; (at = fromServer.find("BODY[]", searched)) != std::string::npos;) {
                    searched = at + 6;
                    if (++bodies == 2) {
                        // the literal starts after "<0> {NNN}\r\n": cut 40 bytes into it
                        const std::size_t open = fromServer.find("}\r\n", at);
                        const std::size_t cutAt = (open == std::string::npos ? at + 20 : open + 3) + 40;
                        if (cutAt > before)
                            sendAll(client, fromServer.data() + before, std::min(cutAt, fromServer.size()) - before);
                        cut_ = true;
                        return;  // both sides closed by the caller
                    }
                }
                sendAll(client, buf, static_cast<std::size_t>(n));
            }
        }
    }

    int target_;
    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<bool> cut_{false};
    std::thread thread_;
};

std::string smallRequest(int n) {
    return "From: Alice Schmidt <alice@example.test>\r\nTo: support@example.test\r\nSubject: cut test " +
           std::to_string(n) + "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <cut" + std::to_string(n) +
           "." + std::to_string(Poco::Timestamp().epochMicroseconds()) +
           "@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + std::string(400, 'x') +
           "\r\n";
}

}  // namespace

TEST_CASE("fetch cut mid-literal counts only what it committed and the next run stores the rest once",
          "[integration][faults][fetch]") {
    smtest::MailServers servers;
    servers.reset({"support"});
    smtest::TempDir dir;
    for (int i = 1; i <= 3; ++i) {
        const std::string file = dir.file("m" + std::to_string(i) + ".eml");
        smtest::writeFile(file, smallRequest(i));
        REQUIRE(servers.sendToSupport("alice@example.test", file).exitCode == 0);
    }
    REQUIRE(smtest::waitForMessages(servers.env, "support", "support-pw", 3, 10000).size() == 3);

    CuttingProxy proxy(servers.env.imapPort);
    // Plain IMAP through the proxy (the test Dovecot allows it on loopback), so it sees the literals.
    const std::string conf = smtest::writeTestConfig(
        dir, "maildir:" + dir.file("spool"),
        "inbound.support.url = imap://127.0.0.1:" + std::to_string(proxy.port()) +
            "/INBOX\ninbound.support.username = support\n");
    const std::vector<std::string> auth = {"SUPPORTMAIL_IMAP_PASSWORD=support-pw"};

    const auto first = smtest::runSupportmail({"--config", conf, "fetch"}, auth);
    INFO(first.out << first.err);
    REQUIRE(proxy.cut());
    CHECK(first.exitCode == 75);  // the server was lost: temporary
    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    int stored = -1;
    db->session() << "SELECT COUNT(*) FROM inbound", into(stored), now;
    CHECK(stored == 1);  // the first message, committed before the cut
    CHECK(first.out.find("fetch: " + std::to_string(stored) + " new,") != std::string::npos);

    const auto second = smtest::runSupportmail({"--config", conf, "fetch"}, auth);
    INFO(second.out << second.err);
    CHECK(second.exitCode == 0);
    CHECK(second.out.find("fetch: 2 new, 1 already stored") != std::string::npos);
    int distinct = 0;
    db->session() << "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM inbound", into(stored), into(distinct), now;
    CHECK(stored == 3);
    CHECK(distinct == 3);
}
