// MaildirSource on a Maildir built in a temporary directory.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <Poco/Data/Session.h>

#include "mail/maildir_source.h"
#include "support/cli_site.h"
#include "support/test_support.h"

using sm::mail::MaildirSource;
using sm::mail::SourceError;

namespace {

struct Maildir {
    smtest::TempDir tmp;
    std::string dir = tmp.path() + "/Maildir";
    Maildir() {
        for (const char* sub : {"", "/new", "/cur", "/tmp"}) ::mkdir((dir + sub).c_str(), 0700);
    }
    /// Writes sub/name with content and the given mtime (seconds), so order is known.
    std::string put(const std::string& sub, const std::string& name, const std::string& content, long mtime) {
        const std::string path = dir + "/" + sub + "/" + name;
        smtest::writeFile(path, content);
        timeval tv[2] = {{mtime, 0}, {mtime, 0}};
        ::utimes(path.c_str(), tv);
        return path;
    }
    std::vector<std::string> names(const std::string& sub) const {
        std::vector<std::string> out;
        for (const auto& p : smtest::listFiles(dir + "/" + sub)) out.push_back(p.substr(p.rfind('/') + 1));
        return out;
    }
};

std::vector<std::string> keys(const std::vector<sm::mail::InboundMessageRef>& refs) {
    std::vector<std::string> out;
    for (const auto& r : refs) out.push_back(r.key);
    return out;
}

}  // namespace

TEST_CASE("MaildirSource lists unseen mail in new/ and cur/, oldest first", "[maildir]") {
    Maildir m;
    m.put("new", "1700000003.M3P1.host", "third\r\n", 1700000003);
    m.put("new", "1700000001.M1P1.host", "first\r\n", 1700000001);
    m.put("cur", "1700000002.M2P1.host:2,", "second, in cur without flags\r\n", 1700000002);
    m.put("cur", "1700000004.M4P1.host:2,FR", "flagged and replied, not seen\r\n", 1700000004);
    m.put("cur", "1700000005.M5P1.host:2,RS", "seen\r\n", 1700000005);
    m.put("cur", "1700000006.M6P1.host:2,ST", "trashed\r\n", 1700000006);
    m.put("cur", "1700000007.M7P1.host:2,T", "trashed, not seen\r\n", 1700000007);
    m.put("new", ".hidden", "dot files are not mail\r\n", 1700000000);
    m.put("tmp", "1700000008.M8P1.host", "still being delivered\r\n", 1700000000);
    ::mkdir((m.dir + "/new/subdir").c_str(), 0700);

    MaildirSource src(m.dir);
    const auto refs = src.listUnseen();
    CHECK(keys(refs) == std::vector<std::string>{"1700000001.M1P1.host", "1700000002.M2P1.host",
                                                 "1700000003.M3P1.host", "1700000004.M4P1.host"});
    for (const auto& r : refs) CHECK(r.uid == 0);
    CHECK(refs[0].size == 7);
    CHECK(refs[1].size == std::string("second, in cur without flags\r\n").size());
    CHECK(src.describe() == "maildir:" + m.dir);
}

TEST_CASE("MaildirSource fetches bytes unchanged and markSeen renames per the Maildir spec", "[maildir]") {
    Maildir m;
    std::string binary = "Subject: x\r\n\r\nline\nbare LF, bare CR\r, NUL ";
    binary += '\0';
    binary += "\xff\xfe end";
    m.put("new", "1.M1P1.host", binary, 1);
    m.put("cur", "2.M2P1.host:2,F", "flagged\r\n", 2);
    m.put("cur", "3.M3P1.host", "cur without info\r\n", 3);

    MaildirSource src(m.dir);
    REQUIRE(src.listUnseen().size() == 3);
    CHECK(src.fetch("1.M1P1.host") == binary);

    CHECK(src.markSeen("1.M1P1.host"));
    CHECK(src.markSeen("2.M2P1.host"));
    CHECK(src.markSeen("3.M3P1.host"));
    CHECK(m.names("new").empty());
    CHECK(m.names("cur") == std::vector<std::string>{"1.M1P1.host:2,S", "2.M2P1.host:2,FS", "3.M3P1.host:2,S"});
    CHECK(src.listUnseen().empty());
    // still readable by key after the move, and marking twice is harmless
    CHECK(src.fetch("1.M1P1.host") == binary);
    CHECK(src.markSeen("1.M1P1.host"));
    CHECK(m.names("cur").size() == 3);
}

TEST_CASE("MaildirSource skips files that vanished or moved behind its back", "[maildir]") {
    Maildir m;
    m.put("new", "10.M1P1.host", "a\r\n", 10);
    m.put("new", "11.M2P1.host", "b\r\n", 11);
    m.put("new", "12.M3P1.host", "c\r\n", 12);
    MaildirSource src(m.dir);
    REQUIRE(src.listUnseen().size() == 3);

    // another client deletes one and moves another to cur/ with flags
    std::remove((m.dir + "/new/10.M1P1.host").c_str());
    std::rename((m.dir + "/new/11.M2P1.host").c_str(), (m.dir + "/cur/11.M2P1.host:2,R").c_str());

    CHECK_FALSE(src.fetch("10.M1P1.host").has_value());
    CHECK_FALSE(src.markSeen("10.M1P1.host"));
    CHECK(src.fetch("11.M2P1.host") == std::string("b\r\n"));
    CHECK(src.markSeen(std::vector<std::string>{"10.M1P1.host", "11.M2P1.host", "12.M3P1.host", "99.none"}) == 2);
    CHECK(m.names("cur") == std::vector<std::string>{"11.M2P1.host:2,RS", "12.M3P1.host:2,S"});
    CHECK_FALSE(src.fetch("99.none").has_value());
}

TEST_CASE("MaildirSource rejects a non-Maildir and bad keys", "[maildir]") {
    smtest::TempDir tmp;
    try {
        MaildirSource src(tmp.path());
        FAIL("expected an error");
    } catch (const SourceError& e) {
        CHECK(e.kind() == SourceError::Kind::Configuration);
        CHECK_FALSE(e.temporary());
    }
    Maildir m;
    MaildirSource src(m.dir + "/");
    CHECK(src.directory() == m.dir);
    CHECK(src.listUnseen().empty());
    CHECK_THROWS_AS(src.fetch("../escape"), std::invalid_argument);
    CHECK_THROWS_AS(src.fetch(""), std::invalid_argument);
    CHECK_THROWS_AS(src.markSeen("a:2,S"), std::invalid_argument);
}

// fetch reads the files on a reader thread while it stores the ones before: every
// message stored once, in listing order, byte for byte, with a few mails larger than
// the read-ahead (8 MB held at most) and one over process.max_message_bytes.
TEST_CASE("fetch from a Maildir stores every message once, in order, whole, however large", "[maildir]") {
    smtest::CliSite site({}, "process.max_message_bytes = 3500000\n");
    struct Put {
        std::string messageId;
        std::size_t size;
    };
    std::vector<Put> put;
    for (int i = 0; i < 230; ++i) {
        const bool large = i % 60 == 7;  // 4 of 3 MB: only two fit the read-ahead
        const bool tooLarge = i == 100;  // over max_message_bytes: its header alone
        const std::string id = "<order." + std::to_string(i) + "@fetch.example>";
        std::string raw = "From: a@partner.example\r\nTo: support@example.test\r\nSubject: " + std::to_string(i) +
                          "\r\nMessage-ID: " + id + "\r\n\r\n";
        raw += std::string(tooLarge ? 4000000 : large ? 3000000 : 100 + i, 'x') + "\r\n";
        put.push_back({id, raw.size()});
        ::usleep(5000);  // distinct mtimes (a clock tick apart): the listing's order is the order of putting
        site.putInInbox(raw);
    }
    site.run({"fetch"});
    std::vector<std::string> ids, reasons;
    std::vector<std::int64_t> sizes, stored;
    site.db->session() << "SELECT message_id, size, LENGTH(raw), reason FROM inbound JOIN inbound_raw ON inbound_id = inbound.id "
                          "ORDER BY inbound.id",
        Poco::Data::Keywords::into(ids), Poco::Data::Keywords::into(sizes), Poco::Data::Keywords::into(stored),
        Poco::Data::Keywords::into(reasons), Poco::Data::Keywords::now;
    REQUIRE(ids.size() == put.size());
    for (std::size_t i = 0; i < put.size(); ++i) {
        INFO("message " << i);
        CHECK(ids[i] == put[i].messageId);
        CHECK(sizes[i] == static_cast<std::int64_t>(put[i].size));
        if (i == 100) {
            CHECK(reasons[i] == "too_large:" + std::to_string(put[i].size));
            CHECK(stored[i] < 1000);
        } else {
            CHECK(reasons[i].empty());
            CHECK(stored[i] == static_cast<std::int64_t>(put[i].size));
        }
    }
    CHECK(smtest::listFiles(site.inbox + "/new").empty());
    CHECK(smtest::listFiles(site.inbox + "/cur").size() == put.size());
    site.run({"fetch"});
    CHECK(site.scalar("SELECT COUNT(*) FROM inbound") == static_cast<std::int64_t>(put.size()));
}
