// Server faults (issue 9, item 6): tests/faults/fault_proxy.py sits on 127.0.0.1 between
// supportmail and the real Postfix / Dovecot and breaks the conversation: refused,
// silent, cut in DATA or in a FETCH literal, 421/451/452/550/554 in place of the server's
// reply, a wrong and an expired certificate, a mailbox deleted in use, a server silent
// after the final ".". Each case checks what the README promises: the mail retried (4xx,
// connection trouble) or parked with the server's reply (5xx), the documented exit code,
// an end within transport.timeout plus a few seconds, nothing lost (the mail reaches the
// mailbox once the server is healthy again), and a summary equal to what was committed.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>
#include <regex>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/Process.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

constexpr int kTimeout = 3;      // transport.timeout of these tests, seconds
constexpr int kSlack = 6;        // start-up, one reconnect, the summary
const std::string kProxy = "tests/faults/fault_proxy.py";

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

// The proxy as a child process, killed when the test ends.
class FaultProxy {
public:
    FaultProxy(int listen, int upstream, std::vector<std::string> args) : port_(listen) {
        std::vector<std::string> a = {smtest::sourceDir() + "/" + kProxy, "--listen", std::to_string(listen),
                                      "--upstream", std::to_string(upstream)};
        a.insert(a.end(), args.begin(), args.end());
        handle_ = std::make_unique<Poco::ProcessHandle>(Poco::Process::launch("/usr/bin/python3", a));
        for (int i = 0; i < 100 && !canConnect(listen); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        REQUIRE(canConnect(listen));
    }
    ~FaultProxy() {
        Poco::Process::kill(*handle_);
        handle_->wait();
    }

private:
    int port_;
    std::unique_ptr<Poco::ProcessHandle> handle_;
};

struct Timed {
    smtest::RunResult r;
    double seconds = 0;
};

// A site with the sample partners, one gold contract activated and its ID mail queued;
// `conf` talks to Postfix/Dovecot directly, proxyConf() through the proxy.
class Site : public smtest::MailServers {
public:
    smtest::TempDir dir;
    std::string conf;
    std::unique_ptr<sm::store::Database> db;
    int proxyPort = env.smtpPort + 700;  // inside the build's port range (base + 725)

    Site() {
        reset({"support", "alice"});
        conf = smtpConfig(dir, supportInbound() + "transport.timeout = " + std::to_string(kTimeout) +
                                   "\ntransport.connect_timeout = " + std::to_string(kTimeout) +
                                   "\ndelivery.retry_initial = 1\n");
        run(conf, {"import-partners", smtest::writeSamplePartners(dir)});
        std::string renewals = dir.file("renewals.csv");
        smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + smtest::today() + "\n");
        run(conf, {"import-renewals", renewals});
        run(conf, {"activate"});
        db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
        REQUIRE(scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") >= 1);
    }

    /// The same configuration with `replace` (key -> whole line) applied.
    std::string variant(const std::string& name, const std::map<std::string, std::string>& replace) {
        std::string text = smtest::readFile(conf), out, line;
        std::istringstream in(text);
        while (std::getline(in, line)) {
            for (const auto& [key, repl] : replace)
                if (line.rfind(key + " ", 0) == 0 || line.rfind(key + "=", 0) == 0) line = repl;
            out += line + "\n";
        }
        std::string path = dir.file(name);
        smtest::writeFile(path, out);
        return path;
    }
    std::string smtpThroughProxy(const std::string& scheme = "smtp", const std::string& caFile = "") {
        std::map<std::string, std::string> r = {
            {"transport.url", "transport.url = " + scheme + "://127.0.0.1:" + std::to_string(proxyPort) +
                                  "/supportmail.test"},
            {"transport.starttls", "transport.starttls = false"}};
        if (!caFile.empty()) r["transport.ca_file"] = "transport.ca_file = " + caFile;
        return variant("proxy.properties", r);
    }

    smtest::RunResult run(const std::string& config, const std::vector<std::string>& args) {
        std::vector<std::string> a = {"--config", config};
        a.insert(a.end(), args.begin(), args.end());
        return smtest::runSupportmail(a, authSmtpAndImap());
    }
    Timed timed(const std::string& config, const std::vector<std::string>& args) {
        auto t0 = std::chrono::steady_clock::now();
        Timed t;
        t.r = run(config, args);
        t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return t;
    }

    int scalar(const std::string& sql) {
        int n = 0;
        db->session() << sql, into(n), now;
        return n;
    }
    std::string text(const std::string& sql) {
        std::string s;
        db->session() << sql, into(s), now;
        return s;
    }

    /// deliver's summary equals what the outbox committed.
    void summaryMatchesOutbox(const std::string& out) {
        std::smatch m;
        REQUIRE(std::regex_search(out, m, std::regex(R"(deliver: (\d+) sent, (\d+) to retry, (\d+) parked)")));
        CHECK(std::stoi(m[1]) == scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'"));
        CHECK(std::stoi(m[2]) == scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts > 0"));
        CHECK(std::stoi(m[3]) == scalar("SELECT COUNT(*) FROM outbox WHERE state = 'parked'"));
    }

    /// Nothing lost: with the server healthy again every queued mail goes out, once.
    void deliveredLater() {
        db->session() << "UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued'", now;
        auto r = run(conf, {"deliver"});
        INFO(r.out << r.err);
        REQUIRE(r.exitCode == 0);
        CHECK(scalar("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == 0);
        const int sent = scalar("SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%alice@%'");
        auto mails = smtest::waitForMessages(env, "alice", "alice-pw", sent, 10000);
        CHECK(static_cast<int>(mails.size()) == sent);
    }
};

// A CA of the test's own, a certificate for another host and an expired one for 127.0.0.1,
// both signed by it: the client trusts the CA, so only the name or the dates are wrong.
struct BadCertificates {
    std::string ca, wrongCert, wrongKey, expiredCert, expiredKey;
    explicit BadCertificates(const smtest::TempDir& dir) {
        ca = dir.file("ca.pem");
        auto sh = [](const std::string& cmd) {
            auto r = smtest::runProgram("/bin/sh", {"-c", cmd});
            INFO(cmd << "\n" << r.out << r.err);
            REQUIRE(r.exitCode == 0);
        };
        const std::string d = dir.path();
        sh("cd " + d + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout ca.key -out ca.pem -days 30 -subj /CN=fault-test-ca 2>&1");
        // wrong host: valid dates, the CA's signature, but named wrong.example
        sh("cd " + d + " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout wrong.key "
           "-out wrong.csr -subj /CN=wrong.example 2>&1 && printf 'subjectAltName=DNS:wrong.example\\n' > wrong.ext && "
           "openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile wrong.ext "
           "-out wrong.pem 2>&1");
        // expired: the right name, the CA's signature, valid until yesterday
        sh("cd " + d + " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout old.key "
           "-out old.csr -subj /CN=localhost 2>&1 && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > old.ext "
           "&& openssl x509 -req -in old.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days -1 -extfile old.ext "
           "-out old.pem 2>&1");
        wrongCert = dir.file("wrong.pem");
        wrongKey = dir.file("wrong.key");
        expiredCert = dir.file("old.pem");
        expiredKey = dir.file("old.key");
    }
};

void requireBounded(const Timed& t) {
    INFO("took " << t.seconds << " s: " << t.r.out << t.r.err);
    CHECK(t.seconds < kTimeout + kSlack);
}

}  // namespace

TEST_CASE("deliver: a refused connection keeps the mail queued and exits 75", "[integration][faults]") {
    Site s;
    // Nothing listens on the proxy's port: connection refused.
    REQUIRE_FALSE(canConnect(s.proxyPort));
    auto t = s.timed(s.smtpThroughProxy(), {"deliver"});
    INFO(t.r.out << t.r.err);
    CHECK(t.r.exitCode == 75);
    requireBounded(t);
    s.summaryMatchesOutbox(t.r.out);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") ==
          s.scalar("SELECT COUNT(*) FROM outbox"));
    s.deliveredLater();
}

TEST_CASE("deliver: a server that accepts and stays silent costs transport.timeout, exit 75", "[integration][faults]") {
    Site s;
    FaultProxy p(s.proxyPort, s.env.smtpPort, {"--fault", "silent"});
    auto t = s.timed(s.smtpThroughProxy(), {"deliver"});
    INFO(t.r.out << t.r.err);
    CHECK(t.r.exitCode == 75);
    requireBounded(t);
    s.summaryMatchesOutbox(t.r.out);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1") == 1);
    s.deliveredLater();
}

TEST_CASE("deliver: a connection cut in the middle of DATA retries the mail, exit 75", "[integration][faults]") {
    Site s;
    FaultProxy p(s.proxyPort, s.env.smtpPort, {"--fault", "cut-data", "--bytes", "300"});
    auto t = s.timed(s.smtpThroughProxy(), {"deliver"});
    INFO(t.r.out << t.r.err);
    CHECK(t.r.exitCode == 75);
    requireBounded(t);
    s.summaryMatchesOutbox(t.r.out);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1") == 1);
    CHECK(smtest::fetchAll(s.env, "alice", "alice-pw").empty());  // Postfix never got the end of it
    s.deliveredLater();
}

TEST_CASE("deliver: a server silent after the final dot is left after transport.timeout, no wait on QUIT",
          "[integration][faults]") {
    Site s;
    FaultProxy p(s.proxyPort, s.env.smtpPort, {"--fault", "silent-after-dot"});
    auto t = s.timed(s.smtpThroughProxy(), {"deliver"});
    INFO(t.r.out << t.r.err);
    CHECK(t.r.exitCode == 75);
    requireBounded(t);
    s.summaryMatchesOutbox(t.r.out);
    CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1") == 1);
    s.deliveredLater();
}

TEST_CASE("deliver: 4xx replies in place of the server's retry the mail with the reply", "[integration][faults]") {
    struct Case {
        const char *at, *reply;
        int exit;
    };
    // 421 closes the channel: the server is unavailable (exit 75); 451/452 are this mail's (exit 0).
    for (auto c : {Case{"MAIL FROM", "421 4.3.2 fault: service shutting down", 75},
                   Case{"RCPT TO", "451 4.3.0 fault: try again later", 0},
                   Case{"RCPT TO", "452 4.2.2 fault: mailbox full", 0},
                   Case{".", "451 4.3.0 fault: queue file write error", 0}}) {
        DYNAMIC_SECTION(c.reply << " at " << c.at) {
            Site s;
            FaultProxy p(s.proxyPort, s.env.smtpPort, {"--fault", "reply", "--at", c.at, "--reply", c.reply});
            auto t = s.timed(s.smtpThroughProxy(), {"deliver"});
            INFO(t.r.out << t.r.err);
            CHECK(t.r.exitCode == c.exit);
            requireBounded(t);
            s.summaryMatchesOutbox(t.r.out);
            CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts = 1") == 1);
            CHECK(s.text("SELECT last_reply FROM outbox WHERE attempts = 1") == c.reply);
            s.deliveredLater();
        }
    }
}

TEST_CASE("deliver: 5xx replies in place of the server's park the mail with the reply", "[integration][faults]") {
    struct Case {
        const char *at, *reply;
    };
    for (auto c : {Case{"RCPT TO", "550 5.1.1 fault: no such user"},
                   Case{"MAIL FROM", "554 5.7.1 fault: sender refused"},
                   Case{".", "554 5.7.1 fault: message content rejected"}}) {
        DYNAMIC_SECTION(c.reply << " at " << c.at) {
            Site s;
            const int queued = s.scalar("SELECT COUNT(*) FROM outbox");
            FaultProxy p(s.proxyPort, s.env.smtpPort, {"--fault", "reply", "--at", c.at, "--reply", c.reply});
            auto t = s.timed(s.smtpThroughProxy(), {"deliver"});
            INFO(t.r.out << t.r.err);
            CHECK(t.r.exitCode == 0);
            requireBounded(t);
            s.summaryMatchesOutbox(t.r.out);
            CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'parked'") == 1);
            CHECK(s.text("SELECT last_reply FROM outbox WHERE state = 'parked'") == c.reply);
            CHECK(s.scalar("SELECT COUNT(*) FROM outbox") == queued);  // parked, not lost
        }
    }
}

TEST_CASE("deliver: a wrong or an expired certificate is refused, the mail stays queued, exit 75",
          "[integration][faults]") {
    Site s;
    BadCertificates certs(s.dir);
    for (bool expired : {false, true}) {
        DYNAMIC_SECTION((expired ? "expired certificate" : "certificate for another host")) {
            FaultProxy p(s.proxyPort, s.env.smtpPort,
                         {"--fault", "pass", "--cert", expired ? certs.expiredCert : certs.wrongCert, "--key",
                          expired ? certs.expiredKey : certs.wrongKey});
            auto t = s.timed(s.smtpThroughProxy("smtps", certs.ca), {"deliver"});
            INFO(t.r.out << t.r.err);
            CHECK(t.r.exitCode == 75);
            requireBounded(t);
            s.summaryMatchesOutbox(t.r.out);
            CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 0);
            CHECK(s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts >= 1") == 1);
            CHECK(smtest::fetchAll(s.env, "alice", "alice-pw").empty());
            s.deliveredLater();
        }
    }
}

namespace {

// Puts n mails of about `bytes` each into MAILBOX of user support (created when missing).
void appendMails(const smtest::MailServerEnv& env, const std::string& mailbox, int n, int bytes, int first = 0) {
    const std::string script =
        "import imaplib,sys\n"
        "c=imaplib.IMAP4('127.0.0.1'," + std::to_string(env.imapPort) + ")\n"
        "c.login('support','support-pw')\n"
        "c.create('" + mailbox + "')\n"
        "for i in range(" + std::to_string(first) + "," + std::to_string(first + n) + "):\n"
        "  body=('x'*76+'\\r\\n')*(" + std::to_string(bytes / 78) + ")\n"
        "  m='From: alice@example.test\\r\\nTo: support@example.test\\r\\nSubject: fault %d\\r\\n"
        "Message-ID: <fault-%d@partner.example>\\r\\n\\r\\n%s' % (i,i,body)\n"
        "  assert c.append('" + mailbox + "',None,None,m.encode())[0]=='OK'\n"
        "c.logout()\n";
    auto r = smtest::runProgram("/usr/bin/python3", {"-c", script});
    INFO(r.out << r.err);
    REQUIRE(r.exitCode == 0);
}

int fetchedNew(const std::string& out) {
    std::smatch m;
    REQUIRE(std::regex_search(out, m, std::regex(R"(fetch: (\d+) new)")));
    return std::stoi(m[1]);
}

}  // namespace

TEST_CASE("fetch: a connection cut inside a FETCH literal stores nothing half, says what it stored, exit 75",
          "[integration][faults]") {
    Site s;
    // Two small mails, then one the proxy cuts half way: the small ones may be stored.
    appendMails(s.env, "INBOX", 2, 2000);
    appendMails(s.env, "INBOX", 1, 40000, 2);
    std::string viaProxy = s.variant(
        "proxy.properties",
        {{"inbound.support.url",
          "inbound.support.url = imap://127.0.0.1:" + std::to_string(s.proxyPort) + "/INBOX"},
         {"inbound.support.starttls", "inbound.support.starttls = false"}});
    {
        FaultProxy p(s.proxyPort, s.env.imapPort, {"--fault", "cut-literal", "--bytes", "20000"});
        auto t = s.timed(viaProxy, {"fetch"});
        INFO(t.r.out << t.r.err);
        CHECK(t.r.exitCode == 75);
        requireBounded(t);
        // The summary counts what was committed, nothing of a rolled-back group.
        CHECK(fetchedNew(t.r.out) == s.scalar("SELECT COUNT(*) FROM inbound"));
    }
    // Nothing lost, nothing twice: the healthy server hands over the rest (through the same
    // address: the mailbox's sync state belongs to its URL).
    FaultProxy healthy(s.proxyPort, s.env.imapPort, {"--fault", "pass"});
    auto r = s.run(viaProxy, {"fetch"});
    INFO(r.out << r.err);
    CHECK(r.exitCode == 0);
    INFO(s.text("SELECT group_concat(message_id || ' ' || source_key, ', ') FROM inbound"));
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound") == 3);
    CHECK(s.scalar("SELECT COUNT(DISTINCT message_id) FROM inbound") == 3);
}

TEST_CASE("fetch: a refused IMAP connection stores nothing, exit 75", "[integration][faults]") {
    Site s;
    appendMails(s.env, "INBOX", 1, 1000);
    REQUIRE_FALSE(canConnect(s.proxyPort));
    std::string viaProxy = s.variant(
        "proxy.properties",
        {{"inbound.support.url",
          "inbound.support.url = imap://127.0.0.1:" + std::to_string(s.proxyPort) + "/INBOX"},
         {"inbound.support.starttls", "inbound.support.starttls = false"}});
    auto t = s.timed(viaProxy, {"fetch"});
    INFO(t.r.out << t.r.err);
    CHECK(t.r.exitCode == 75);
    requireBounded(t);
    CHECK(fetchedNew(t.r.out) == 0);
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound") == 0);
    auto r = s.run(s.conf, {"fetch"});
    CHECK(r.exitCode == 0);
    CHECK(s.scalar("SELECT COUNT(*) FROM inbound") == 1);
}

TEST_CASE("fetch: a mailbox deleted while in use ends the run with an error, the summary true to the store",
          "[integration][faults]") {
    Site s;
    appendMails(s.env, "Requests", 3, 2000);
    std::string viaProxy = s.variant(
        "proxy.properties",
        {{"inbound.support.url",
          "inbound.support.url = imap://127.0.0.1:" + std::to_string(s.proxyPort) + "/Requests"},
         {"inbound.support.starttls", "inbound.support.starttls = false"}});
    // The listing and the first message pass; the mailbox goes before the second.
    FaultProxy p(s.proxyPort, s.env.imapPort,
                 {"--fault", "delete-mailbox", "--at", "UID FETCH", "--skip", "2", "--mailbox", "Requests", "--user", "support",
                  "--password", "support-pw"});
    auto t = s.timed(viaProxy, {"fetch"});
    INFO(t.r.out << t.r.err);
    // The mailbox vanished: a mailbox failure (69) or a temporary one (75), never success, never a hang.
    CHECK((t.r.exitCode == 69 || t.r.exitCode == 75));
    CHECK_FALSE(t.r.err.empty());
    requireBounded(t);
    CHECK(fetchedNew(t.r.out) == s.scalar("SELECT COUNT(*) FROM inbound"));
    CHECK(s.scalar("SELECT COUNT(DISTINCT message_id) FROM inbound") == s.scalar("SELECT COUNT(*) FROM inbound"));
}

TEST_CASE("fetch: a wrong or an expired IMAP certificate is refused before login, nothing stored, exit 69",
          "[integration][faults]") {
    Site s;
    BadCertificates certs(s.dir);
    appendMails(s.env, "INBOX", 1, 1000);
    for (bool expired : {false, true}) {
        DYNAMIC_SECTION((expired ? "expired certificate" : "certificate for another host")) {
            std::string viaProxy = s.variant(
                "proxy.properties",
                {{"inbound.support.url",
                  "inbound.support.url = imaps://127.0.0.1:" + std::to_string(s.proxyPort) + "/INBOX"},
                 {"inbound.support.starttls", "inbound.support.starttls = false"},
                 {"inbound.support.ca_file", "inbound.support.ca_file = " + certs.ca}});
            FaultProxy p(s.proxyPort, s.env.imapPort,
                         {"--fault", "pass", "--cert", expired ? certs.expiredCert : certs.wrongCert, "--key",
                          expired ? certs.expiredKey : certs.wrongKey});
            auto t = s.timed(viaProxy, {"fetch"});
            INFO(t.r.out << t.r.err);
            // fetch counts a certificate it cannot trust with login and mailbox failures (69: an
            // operator must act); deliver retries it as a connection failure (75).
            CHECK(t.r.exitCode == 69);
            CHECK(t.r.err.find("certificate") != std::string::npos);
            requireBounded(t);
            CHECK(fetchedNew(t.r.out) == 0);
            CHECK(s.scalar("SELECT COUNT(*) FROM inbound") == 0);
            auto r = s.run(s.conf, {"fetch"});
            CHECK(r.exitCode == 0);
            CHECK(s.scalar("SELECT COUNT(*) FROM inbound") == 1);
        }
    }
}
