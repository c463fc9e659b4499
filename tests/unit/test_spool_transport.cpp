// SpoolTransport (Maildir delivery) and makeTransport() URL dispatch; no servers.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mail/smtp_transport.h"
#include "mail/spool_transport.h"
#include "mail/transport.h"
#include "jobs/deliver.h"
#include "store/database.h"
#include "store/outbox.h"
#include "support/test_support.h"

#include <Poco/Data/Session.h>
#include <Poco/Logger.h>

using namespace sm::mail;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/smspool.XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::vector<std::string> listDir(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(n);
        }
        ::closedir(d);
    }
    return names;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool isDir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Envelope env1() {
    Envelope e;
    e.from = "support@example.test";
    e.recipients = {"alice@example.test"};
    return e;
}

const std::string kMail =
    "From: <support@example.test>\r\nTo: <alice@example.test>\r\nSubject: hi\r\n"
    "Message-ID: <1@x>\r\n\r\nHello\r\n.dot line\r\n";

TransportSettings urlOnly(const std::string& url) {
    TransportSettings s;
    s.url = url;
    return s;
}

}  // namespace

TEST_CASE("SpoolTransport creates the Maildir and stores the exact bytes in new/", "[spool]") {
    TempDir tmp;
    const std::string dir = tmp.path + "/a/b/outbox";  // missing parents too
    auto t = makeTransport(urlOnly("maildir:" + dir));
    CHECK(t->describe() == "maildir:" + dir);
    CHECK_FALSE(isDir(dir));  // nothing happens before the first send

    const auto out = t->send(env1(), "<1@x>", kMail);
    INFO(out.reply);
    REQUIRE(out.status == DeliveryStatus::Sent);
    CHECK_FALSE(out.serverUnavailable);
    CHECK(out.reply.find("<1@x>") != std::string::npos);
    CHECK(isDir(dir + "/tmp"));
    CHECK(isDir(dir + "/cur"));
    CHECK(listDir(dir + "/tmp").empty());
    CHECK(listDir(dir + "/cur").empty());
    const auto files = listDir(dir + "/new");
    REQUIRE(files.size() == 1);
    CHECK(out.reply.find(files[0]) != std::string::npos);
    CHECK(files[0].find(':') == std::string::npos);
    CHECK(files[0].find('/') == std::string::npos);
    CHECK(readFile(dir + "/new/" + files[0]) == kMail);
}

TEST_CASE("SpoolTransport keeps arbitrary bytes: NUL and bare LF and 8-bit and empty", "[spool]") {
    TempDir tmp;
    SpoolTransport t(tmp.path + "/md/");  // trailing slash is fine
    CHECK(t.directory() == tmp.path + "/md");
    std::string odd("a\0b\nc\r\n\xff\xfe\r", 11);
    REQUIRE(t.send(env1(), "", odd).status == DeliveryStatus::Sent);
    REQUIRE(t.send(env1(), "", "").status == DeliveryStatus::Sent);
    std::multiset<std::string> contents;
    for (const auto& f : listDir(tmp.path + "/md/new")) contents.insert(readFile(tmp.path + "/md/new/" + f));
    CHECK(contents == std::multiset<std::string>{odd, ""});
}

TEST_CASE("SpoolTransport accepts spool: and relative paths as given", "[spool]") {
    TempDir tmp;
    char cwd[4096];
    REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
    REQUIRE(::chdir(tmp.path.c_str()) == 0);
    DeliveryOutcome out;
    std::string describe;
    {
        auto t = makeTransport(urlOnly("spool:rel/out"));
        describe = t->describe();
        out = t->send(env1(), "<2@x>", kMail);
    }
    REQUIRE(::chdir(cwd) == 0);
    CHECK(describe == "maildir:rel/out");
    REQUIRE(out.status == DeliveryStatus::Sent);
    CHECK(listDir(tmp.path + "/rel/out/new").size() == 1);

    auto t2 = makeTransport(urlOnly("MAILDIR://" + tmp.path + "/abs"));  // maildir:///abs
    CHECK(t2->describe() == "maildir:" + tmp.path + "/abs");
}

TEST_CASE("SpoolTransport names are unique across threads and transports", "[spool]") {
    TempDir tmp;
    const std::string dir = tmp.path + "/md";
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&, i] {
            SpoolTransport t(dir);
            for (int j = 0; j < 250; ++j)
                if (t.send(env1(), "", "mail " + std::to_string(i) + "/" + std::to_string(j)).status !=
                    DeliveryStatus::Sent)
                    ++failures[i];
        });
    for (auto& th : threads) th.join();
    CHECK(failures == std::vector<int>(4, 0));
    const auto files = listDir(dir + "/new");
    CHECK(files.size() == 1000);
    CHECK(std::set<std::string>(files.begin(), files.end()).size() == 1000);
    CHECK(listDir(dir + "/tmp").empty());
    CHECK(SpoolTransport::uniqueName() != SpoolTransport::uniqueName());
}

TEST_CASE("SpoolTransport reports filesystem errors as temporary, server unavailable", "[spool]") {
    TempDir tmp;
    // a regular file where a directory should be: fails even for root
    { std::ofstream(tmp.path + "/file") << "x"; }
    SpoolTransport t(tmp.path + "/file/md");
    const auto out = t.send(env1(), "<3@x>", kMail);
    INFO(out.reply);
    CHECK(out.status == DeliveryStatus::TemporaryFailure);
    CHECK(out.serverUnavailable);
    CHECK(out.reply.find("Not a directory") != std::string::npos);
    CHECK(out.reply.find(tmp.path + "/file") != std::string::npos);

    // tmp/ exists, new/ is a file: the rename fails, nothing is left behind in tmp/
    const std::string md = tmp.path + "/md2";
    REQUIRE(::mkdir(md.c_str(), 0755) == 0);
    REQUIRE(::mkdir((md + "/tmp").c_str(), 0755) == 0);
    { std::ofstream(md + "/new") << "x"; }
    const auto out2 = SpoolTransport(md).send(env1(), "", kMail);
    INFO(out2.reply);
    CHECK(out2.status == DeliveryStatus::TemporaryFailure);
    CHECK(out2.serverUnavailable);
    CHECK(listDir(md + "/tmp").empty());

    // disk full, if /dev/full-like conditions can be had: writing to a directory named
    // /dev/full is impossible, so the errno path is covered by the cases above
}

TEST_CASE("SpoolTransport recreates a Maildir removed while in use", "[spool]") {
    TempDir tmp;
    const std::string dir = tmp.path + "/md";
    SpoolTransport t(dir);
    REQUIRE(t.send(env1(), "", "one").status == DeliveryStatus::Sent);
    std::system(("rm -rf '" + dir + "'").c_str());
    REQUIRE(t.send(env1(), "", "two").status == DeliveryStatus::Sent);
    CHECK(listDir(dir + "/new").size() == 1);
}

TEST_CASE("makeTransport rejects unknown schemes and malformed URLs precisely", "[spool][transport]") {
    auto message = [](const std::string& url) -> std::string {
        try {
            makeTransport(urlOnly(url));
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "<no exception>";
    };
    CHECK_THAT(message(""), Catch::Contains("empty transport URL"));
    CHECK_THAT(message("/var/spool/x"), Catch::Contains("no scheme"));
    CHECK_THAT(message("ftp://host/x"), Catch::Contains("unknown transport URL scheme 'ftp'"));
    CHECK_THAT(message("maildir:"), Catch::Contains("missing directory"));
    CHECK_THAT(message("maildir://host/x"), Catch::Contains("host part"));
    CHECK_THAT(message("smtp:host"), Catch::Contains("expected smtp://"));
    CHECK_THAT(message("smtp://"), Catch::Contains("missing host"));
    CHECK_THAT(message("smtp://:25"), Catch::Contains("missing host"));
    CHECK_THAT(message("smtp://host:"), Catch::Contains("empty port"));
    CHECK_THAT(message("smtp://host:99999"), Catch::Contains("out of range"));
    CHECK_THAT(message("smtp://host:2x"), Catch::Contains("not a number"));
    CHECK_THAT(message("smtp://host:25?x=1"), Catch::Contains("query"));
    CHECK_THAT(message("smtp://ho st"), Catch::Contains("spaces"));
    CHECK_THAT(message("smtp://host/bad name"), Catch::Contains("spaces"));
    CHECK_THAT(message("smtp://[::1"), Catch::Contains("IPv6"));
    // credentials in the URL: refused, and never echoed
    for (const std::string url : {"smtp://bob:hunter2@host:25", "smtps://bob:hunter2@host",
                                  "ftp://bob:hunter2@host", "bob:hunter2@host"}) {
        const std::string m = message(url);
        INFO(url << " -> " << m);
        CHECK(m != "<no exception>");
        CHECK(m.find("hunter2") == std::string::npos);
    }
}

TEST_CASE("makeTransport builds SMTP transports without connecting", "[spool][transport]") {
    TransportSettings s;
    s.url = "SMTP://mail.example.test:587";
    s.startTls = true;
    s.username = "support";
    s.password = "s3cr3t-pw";
    s.caFile = "/etc/ssl/ca.pem";
    auto t = makeTransport(s);
    REQUIRE(dynamic_cast<SmtpTransport*>(t.get()) != nullptr);
    const std::string d = t->describe();
    CHECK(d.find("smtp://mail.example.test:587") != std::string::npos);
    CHECK(d.find("STARTTLS") != std::string::npos);
    CHECK(d.find("AUTH as support") != std::string::npos);
    CHECK(d.find("EHLO supportmail.localdomain") != std::string::npos);
    CHECK(d.find("s3cr3t") == std::string::npos);

    s.url = "smtps://[::1]:465/helo.example.test";  // URL path = EHLO name
    s.startTls = false;
    auto t2 = makeTransport(s);
    CHECK(t2->describe().find("EHLO helo.example.test") != std::string::npos);
    CHECK(t2->describe().find(", TLS") != std::string::npos);
    CHECK(dynamic_cast<SmtpTransport&>(*t2).connectionsOpened() == 0);
}

namespace {
// Reads the connection's settings while deliver's main thread waits for this mail's
// outcome (one connection, the first mail: the main thread is parked in its wait until
// send() returns, so the connection is used by one thread at a time), then hands the
// mail to the real transport.
class SettingsSpy : public sm::mail::Transport {
public:
    SettingsSpy(sm::store::Database& db, sm::mail::Transport& inner) : db_(db), inner_(inner) {}
    sm::mail::DeliveryOutcome send(const sm::mail::Envelope& envelope, std::string_view messageId,
                                   std::string_view bytes) override {
        db_.session() << "PRAGMA synchronous", Poco::Data::Keywords::into(synchronous),
            Poco::Data::Keywords::now;
        db_.session() << "PRAGMA cache_size", Poco::Data::Keywords::into(cacheSize), Poco::Data::Keywords::now;
        return inner_.send(envelope, messageId, bytes);
    }
    std::string describe() const override { return inner_.describe(); }
    int synchronous = -1;
    std::int64_t cacheSize = 0;

private:
    sm::store::Database& db_;
    sm::mail::Transport& inner_;
};
}  // namespace

TEST_CASE("deliver commits its marks without an fsync each, then puts full durability back", "[spool][deliver]") {
    smtest::TempDir dir;
    auto db = sm::store::Database::open("sqlite:" + dir.file("d.db"));
    db->migrate();
    auto synchronous = [&] {
        int v = -1;
        db->session() << "PRAGMA synchronous", Poco::Data::Keywords::into(v), Poco::Data::Keywords::now;
        return v;
    };
    REQUIRE(synchronous() == 2);  // FULL: every other job's commits
    {
        sm::store::RelaxedDurability relaxed(*db);
        CHECK(synchronous() == 1);  // NORMAL
    }
    CHECK(synchronous() == 2);

    sm::store::OutboxRow row;
    row.messageId = "<d.1@example.test>";
    row.kind = "test";
    row.envelopeFrom = "support@example.test";
    row.recipients = {"alice@example.test"};
    row.bytes = "Subject: x\r\n\r\nx\r\n";
    sm::store::Outbox(*db).enqueue(row);
    sm::mail::TransportSettings ts;
    ts.url = "maildir:" + dir.file("spool");
    auto transport = sm::mail::makeTransport(ts);
    auto cacheSize = [&] {
        std::int64_t v = 0;
        db->session() << "PRAGMA cache_size", Poco::Data::Keywords::into(v), Poco::Data::Keywords::now;
        return v;
    };
    REQUIRE(cacheSize() == -65536);  // the connection's 64 MB
    SettingsSpy spy(*db, *transport);
    auto report = sm::jobs::deliver(*db, sm::config::DeliverySettings{}, spy, Poco::Logger::get("test"));
    CHECK(report.sent == 1);
    // While it sends: no fsync per mark, and an 8 MB page cache (a commit's cost grew
    // with the cache, so deliver's main thread slowed as the queue deepened).
    CHECK(spy.synchronous == 1);
    CHECK(spy.cacheSize == -8192);
    CHECK(synchronous() == 2);
    CHECK(cacheSize() == -65536);
    // The mark is there, read through a fresh connection.
    auto other = sm::store::Database::open("sqlite:" + dir.file("d.db"));
    int sent = 0;
    other->session() << "SELECT COUNT(*) FROM outbox WHERE state = 'sent'", Poco::Data::Keywords::into(sent),
        Poco::Data::Keywords::now;
    CHECK(sent == 1);
}

TEST_CASE("SpoolTransport delivers a Message-ID once: a repeat finds it in new/ or in cur/ with flags", "[spool]") {
    TempDir tmp;
    const std::string dir = tmp.path + "/md";
    SpoolTransport t(dir);
    const auto first = t.send(env1(), "<once@x>", kMail);
    REQUIRE(first.status == DeliveryStatus::Sent);
    const auto files = listDir(dir + "/new");
    REQUIRE(files.size() == 1);
    CHECK(files[0] == SpoolTransport::deliveryName("<once@x>"));
    CHECK(SpoolTransport::deliveryName("<once@x>") != SpoolTransport::deliveryName("<twice@x>"));

    // The same mail again (a deliver that died before marking it sent), by another transport.
    SpoolTransport again(dir);
    const auto repeat = again.send(env1(), "<once@x>", "other bytes");
    INFO(repeat.reply);
    CHECK(repeat.status == DeliveryStatus::Sent);
    CHECK(repeat.reply.find("already in the spool") != std::string::npos);
    CHECK(listDir(dir + "/new").size() == 1);
    CHECK(readFile(dir + "/new/" + files[0]) == kMail);  // the first copy, untouched

    // A reader took it to cur/ and flagged it: still recognised, in a transport made after the move...
    REQUIRE(::rename((dir + "/new/" + files[0]).c_str(), (dir + "/cur/" + files[0] + ":2,S").c_str()) == 0);
    SpoolTransport third(dir);
    CHECK(third.send(env1(), "<once@x>", kMail).reply.find("already in the spool") != std::string::npos);
    // ... and in one that listed cur/ before the move (cur/ changed: listed again).
    REQUIRE(third.send(env1(), "<second@x>", kMail).status == DeliveryStatus::Sent);
    const std::string second = SpoolTransport::deliveryName("<second@x>");
    REQUIRE(::rename((dir + "/new/" + second).c_str(), (dir + "/cur/" + second + ":2,RS").c_str()) == 0);
    CHECK(third.send(env1(), "<second@x>", kMail).reply.find("already in the spool") != std::string::npos);
    CHECK(listDir(dir + "/new").empty());
    CHECK(listDir(dir + "/cur").size() == 2);
    CHECK(listDir(dir + "/tmp").empty());
}

TEST_CASE("SpoolTransport removes tmp files untouched for 36 hours and replaces its own leftover", "[spool]") {
    TempDir tmp;
    const std::string dir = tmp.path + "/md";
    REQUIRE(SpoolTransport(dir).send(env1(), "<setup@x>", kMail).status == DeliveryStatus::Sent);  // creates md/
    auto writeTmp = [&](const std::string& name, long ageSeconds) {
        const std::string path = dir + "/tmp/" + name;
        std::ofstream(path) << "partial";
        const timeval times[2] = {{::time(nullptr) - ageSeconds, 0}, {::time(nullptr) - ageSeconds, 0}};
        REQUIRE(::utimes(path.c_str(), times) == 0);
    };
    writeTmp("old.dead-writer", 37 * 3600);
    writeTmp("young.other-writer", 35 * 3600);  // still within the 36 hours: kept
    writeTmp(SpoolTransport::deliveryName("<mine@x>"), 60);  // our own, for the mail sent below
    SpoolTransport t(dir);
    const auto out = t.send(env1(), "<mine@x>", kMail);
    REQUIRE(out.status == DeliveryStatus::Sent);
    CHECK(t.staleTmpRemoved() == 1);
    CHECK(listDir(dir + "/tmp") == std::vector<std::string>{"young.other-writer"});
    CHECK(readFile(dir + "/new/" + SpoolTransport::deliveryName("<mine@x>")) == kMail);  // not "partial"
    CHECK(listDir(dir + "/new").size() == 2);
}

TEST_CASE("deliver into the spool killed after a send repeats it without a second copy", "[spool][deliver]") {
    smtest::TempDir dir;
    const std::string spool = dir.file("spool");
    const std::string conf = smtest::writeTestConfig(dir, "maildir:" + spool);
    {
        auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
        db->migrate();
        for (int i = 1; i <= 3; ++i) {
            sm::store::OutboxRow row;
            row.messageId = "<crash." + std::to_string(i) + "@example.test>";
            row.kind = "test";
            row.envelopeFrom = "support@example.test";
            row.recipients = {"alice@example.test"};
            row.bytes = "Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n";
            sm::store::Outbox(*db).enqueue(row);
        }
    }
    const bool readerMovedIt = GENERATE(false, true);
    auto killed = smtest::runSupportmail({"--config", conf, "deliver"}, {"SUPPORTMAIL_CRASH_AT=deliver.after_send"});
    INFO(killed.out << killed.err);
    REQUIRE(killed.exitCode != 0);
    const auto afterCrash = listDir(spool + "/new");
    REQUIRE(afterCrash.size() == 1);  // the first mail went in, its mark did not
    if (readerMovedIt)
        REQUIRE(::rename((spool + "/new/" + afterCrash[0]).c_str(),
                         (spool + "/cur/" + afterCrash[0] + ":2,S").c_str()) == 0);
    auto rerun = smtest::runSupportmail({"--config", conf, "deliver"});
    INFO(rerun.out << rerun.err);
    REQUIRE(rerun.exitCode == 0);
    CHECK(listDir(spool + "/new").size() + listDir(spool + "/cur").size() == 3);
    CHECK(listDir(spool + "/tmp").empty());
    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    int sent = 0, attempts = 0;
    db->session() << "SELECT COUNT(*), SUM(attempts) FROM outbox WHERE state = 'sent'", Poco::Data::Keywords::into(sent),
        Poco::Data::Keywords::into(attempts), Poco::Data::Keywords::now;
    CHECK(sent == 3);
    CHECK(attempts == 3);
    std::string reply;
    db->session() << "SELECT last_reply FROM outbox WHERE message_id = '<crash.1@example.test>'",
        Poco::Data::Keywords::into(reply), Poco::Data::Keywords::now;
    CHECK(reply.find("already in the spool") != std::string::npos);
}
