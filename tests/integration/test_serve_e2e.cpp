// `supportmail serve` against the real Postfix + Dovecot: a short schedule, a
// request mail sent by swaks is answered end to end by the daemon alone, then
// SIGTERM stops it cleanly (exit 0, nothing pending or queued). SIGHUP reloads.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <regex>
#include <thread>

#include <Poco/Data/Session.h>
#include <Poco/Process.h>
#include <Poco/Timestamp.h>

#include "store/database.h"
#include "support/mail_servers.h"

using namespace Poco::Data::Keywords;

namespace {

const std::vector<std::string> kUsers = {"support", "alice", "ops"};

class Daemon : public smtest::MailServers {
public:
    smtest::TempDir dir;
    std::string conf, log;
    std::string goldAccess, goldContract;
    int pid = -1;
    int exitStatus = -1;

    Daemon() {
        reset(kUsers);
        conf = smtpConfig(dir, supportInbound() +
                                   "mail.admin = ops@example.test\n"
                                   "schedule.fetch_process = 1\nschedule.deliver = 1\nschedule.activate =\nschedule.expire =\n");
        log = dir.file("serve.log");
        run({"import-partners", smtest::writeSamplePartners(dir)});
        std::string renewals = dir.file("renewals.csv");
        std::string today = smtest::today();
        smtest::writeFile(renewals, "partner_id,benefit,renewal_date\n4648141,gold," + today + "\n");
        run({"import-renewals", renewals});
        run({"activate"});
        auto db = openDb();
        db->session() << "SELECT access_id, contract_id FROM contracts WHERE plan_key = 'gold'", into(goldAccess),
            into(goldContract), now;
        db->session() << "UPDATE outbox SET state = 'sent' WHERE kind = 'id_mail'", now;  // not under test here
    }

    ~Daemon() {
        if (pid > 0 && exitStatus == -1) {
            ::kill(pid, SIGKILL);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
    }

    std::unique_ptr<sm::store::Database> openDb() { return sm::store::Database::open("sqlite:" + dir.file("supportmail.db")); }

    void run(const std::vector<std::string>& args) {
        std::vector<std::string> a = {"--config", conf};
        a.insert(a.end(), args.begin(), args.end());
        auto r = smtest::runSupportmail(a, authSmtpAndImap());
        INFO(args[0] << ": " << r.out << r.err);
        REQUIRE(r.exitCode == 0);
    }

    void start() {
        Poco::Process::Env penv;
        penv["SUPPORTMAIL_SMTP_PASSWORD"] = "support-pw";
        penv["SUPPORTMAIL_IMAP_PASSWORD"] = "support-pw";
        // exec: the shell becomes the daemon, so the pid is the daemon's.
        auto handle = Poco::Process::launch(
            "/bin/sh", {"-c", std::string("exec '") + SUPPORTMAIL_BINARY + "' --config '" + conf + "' serve >'" +
                                  dir.file("serve.out") + "' 2>'" + log + "'"},
            dir.path(), nullptr, nullptr, nullptr, penv);
        pid = static_cast<int>(handle.id());
        REQUIRE(pid > 0);
    }

    /// Waits up to timeoutMs for the daemon to exit; its exit code, or -1 if it still runs
    /// (or -2 if it ended by a signal).
    int waitExit(int timeoutMs) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (std::chrono::steady_clock::now() < deadline) {
            int st = 0;
            pid_t r = ::waitpid(pid, &st, WNOHANG);
            if (r == pid) {
                exitStatus = WIFEXITED(st) ? WEXITSTATUS(st) : -2;
                return exitStatus;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return -1;
    }

    bool logContains(const std::string& text, int timeoutMs) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        do {
            if (smtest::fileExists(log) && smtest::readFile(log).find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        } while (std::chrono::steady_clock::now() < deadline);
        return false;
    }

    void send(const std::string& from, const std::string& raw) {
        std::string file = dir.file("msg.eml");
        smtest::writeFile(file, raw);
        auto r = sendToSupport(from, file);
        INFO(r.out << r.err);
        REQUIRE(r.exitCode == 0);
    }
};

std::string requestMail(const std::string& access, const std::string& contract) {
    return "From: Alice Schmidt <alice@example.test>\r\nTo: support@example.test\r\nSubject: Cluster fails over"
           "\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <serve." +
           std::to_string(Poco::Timestamp().epochMicroseconds()) +
           "@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "Hello,\r\n\r\nAccess ID: " + access + "\r\nContract ID: " + contract +
           "\r\nProduct: Windows Server 2019\r\nUsage type: IT Pro\r\nProblem type: Performance\r\n"
           "Category: Cluster\r\nSeverity: A\r\nDescription: the cluster fails over every hour.\r\n";
}

}  // namespace

TEST_CASE("serve answers a request end to end and stops cleanly on SIGTERM", "[integration][serve]") {
    Daemon d;
    d.start();
    REQUIRE(d.logContains("serve: started", 10000));
    d.send("alice@example.test", requestMail(d.goldAccess, d.goldContract));

    // The daemon alone fetches, processes and delivers: the confirmation arrives.
    auto mails = smtest::waitForMessages(d.env, "alice", "alice-pw", 1, 60000);
    INFO(smtest::readFile(d.log));
    REQUIRE(mails.size() == 1);
    std::smatch m;
    REQUIRE(std::regex_search(mails[0], m, std::regex("SR-[0-9]{4}-[0-9]{6}")));
    const std::string caseNumber = m.str(0);

    REQUIRE(::kill(d.pid, SIGTERM) == 0);
    CHECK(d.waitExit(30000) == 0);
    std::string log = smtest::readFile(d.log);
    INFO(log);
    CHECK(log.find("SIGTERM") != std::string::npos);
    CHECK(log.find("serve: stopped") != std::string::npos);
    CHECK(log.find("serve: fetch: ") != std::string::npos);
    CHECK(log.find("serve: process: ") != std::string::npos);
    CHECK(log.find("serve: deliver: ") != std::string::npos);

    auto db = d.openDb();
    auto scalar = [&db](const std::string& sql) {
        int n = 0;
        db->session() << sql, into(n), now;
        return n;
    };
    CHECK(scalar("SELECT COUNT(*) FROM inbound WHERE state = 'pending'") == 0);
    CHECK(scalar("SELECT COUNT(*) FROM inbound") == 1);
    CHECK(scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") == 0);
    CHECK(scalar("SELECT COUNT(*) FROM incidents WHERE case_number = '" + caseNumber + "'") == 1);
    CHECK(scalar("SELECT COUNT(*) FROM incidents") == 1);
    CHECK(scalar("SELECT COUNT(*) FROM ledger l JOIN contracts c ON c.id = l.contract_ref "
                 "WHERE c.plan_key = 'gold' AND l.delta < 0") == 1);
    CHECK(scalar("SELECT COALESCE(SUM(l.delta), 0) FROM ledger l JOIN contracts c ON c.id = l.contract_ref "
                 "WHERE c.plan_key = 'gold'") == 19);
    for (const std::string job : {"fetch", "process", "deliver"}) {
        INFO(job);
        CHECK(scalar("SELECT COUNT(*) FROM job_runs WHERE job = '" + job + "' AND outcome = 'ok'") >= 1);
        CHECK(scalar("SELECT COUNT(*) FROM job_runs WHERE job = '" + job + "' AND outcome = 'running'") == 0);
    }
    CHECK(scalar("SELECT COUNT(*) FROM leases WHERE expires_at > strftime('%s','now')") == 0);
}

TEST_CASE("serve reloads its configuration on SIGHUP and keeps running", "[integration][serve]") {
    Daemon d;
    d.start();
    REQUIRE(d.logContains("serve: started", 10000));

    REQUIRE(::kill(d.pid, SIGHUP) == 0);
    CHECK(d.logContains("serve: configuration reloaded", 10000));
    CHECK(d.waitExit(1000) == -1);  // still running

    // A broken file: logged with file:line, the previous configuration kept.
    std::string text = smtest::readFile(d.conf);
    auto at = text.find("schedule.deliver = 1\n");
    REQUIRE(at != std::string::npos);
    smtest::writeFile(d.conf, text.replace(at, 20, "schedule.deliver = often"));
    REQUIRE(::kill(d.pid, SIGHUP) == 0);
    CHECK(d.logContains("reload failed, keeping the previous configuration: " + d.conf + ":", 10000));
    CHECK(d.logContains("schedule.deliver: 'often' is not a whole number", 1000));
    // ... and goes on with the previous schedule (deliver every second).
    auto delivers = [&d] {
        std::string log = smtest::readFile(d.log);
        std::size_t n = 0;
        for (auto p = log.find("serve: deliver: "); p != std::string::npos; p = log.find("serve: deliver: ", p + 1)) ++n;
        return n;
    };
    const std::size_t before = delivers();
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    CHECK(delivers() > before);
    CHECK(d.waitExit(100) == -1);

    REQUIRE(::kill(d.pid, SIGTERM) == 0);
    CHECK(d.waitExit(30000) == 0);
    INFO(smtest::readFile(d.log));
    CHECK(smtest::readFile(d.log).find("serve: stopped") != std::string::npos);
}
