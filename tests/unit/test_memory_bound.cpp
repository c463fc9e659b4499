// Memory is bounded by process.max_message_bytes, not by the mail: a mail of
// several GB (a sparse file: a real header, then zeros) in the Maildir is
// recorded from its header by fetch and answered by process, and inspect
// refuses it, each with a peak RSS far below the mail's size.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>

#include <Poco/Data/Session.h>

#include "store/database.h"
#include "support/test_support.h"

using namespace Poco::Data::Keywords;

namespace {

/// The largest peak RSS of the children waited for so far, in MB.
long childPeakMb() {
    rusage ru{};
    REQUIRE(::getrusage(RUSAGE_CHILDREN, &ru) == 0);
    return ru.ru_maxrss / 1024;  // KB on Linux
}

constexpr long kBoundMb = 200;

}  // namespace

TEST_CASE("a 5 GB mail in the Maildir: fetch records its header, process answers it, inspect refuses it, all in bounded memory",
          "[memory][fetch]") {
    smtest::TempDir dir;
    const std::string inbox = dir.file("inbox");
    for (const char* sub : {"", "/new", "/cur", "/tmp"})
        REQUIRE(smtest::runProgram("/bin/mkdir", {"-p", inbox + sub}).exitCode == 0);
    const std::string conf = smtest::writeTestConfig(dir, "maildir:" + dir.file("spool"),
                                                     "inbound.support.url = maildir:" + inbox + "\n");
    const std::string big = inbox + "/new/1700000000.M1P1.huge";
    const std::string header =
        "From: Alice <alice@example.test>\r\nTo: support@example.test\r\nSubject: the whole disk image\r\n"
        "Message-ID: <huge.1@partner.example>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        "Content-Type: text/plain\r\n\r\nHere it is:\r\n";
    const std::int64_t size = std::int64_t{5} * 1024 * 1024 * 1024;
    {
        const int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
        REQUIRE(::ftruncate(fd, size) == 0);  // sparse: no disk used
        ::close(fd);
    }
    REQUIRE(childPeakMb() < kBoundMb);  // nothing big ran before

    auto inspected = smtest::runSupportmail({"--config", conf, "inspect", big});
    INFO(inspected.err);
    CHECK(inspected.exitCode == 65);
    CHECK(inspected.err.find("more than process.max_message_bytes") != std::string::npos);
    CHECK(inspected.out.empty());
    const long inspectPeak = childPeakMb();
    INFO("inspect peak RSS " << inspectPeak << " MB");
    CHECK(inspectPeak < kBoundMb);

    auto fetched = smtest::runSupportmail({"--config", conf, "fetch"});
    INFO(fetched.out << fetched.err);
    REQUIRE(fetched.exitCode == 0);
    CHECK(fetched.out.find("1 new") != std::string::npos);
    CHECK(fetched.out.find("1 too large") != std::string::npos);
    const long fetchPeak = childPeakMb();
    INFO("fetch peak RSS " << fetchPeak << " MB");
    CHECK(fetchPeak < kBoundMb);

    auto db = sm::store::Database::open("sqlite:" + dir.file("supportmail.db"));
    std::string reason;
    std::int64_t storedSize = 0, rawBytes = 0;
    db->session() << "SELECT reason, size, length(raw) FROM inbound JOIN inbound_raw ON inbound_id = inbound.id", into(reason), into(storedSize), into(rawBytes),
        now;
    CHECK(reason == "too_large:" + std::to_string(size));
    CHECK(storedSize == size);
    CHECK(rawBytes < 64 * 1024);  // the header only

    auto processed = smtest::runSupportmail({"--config", conf, "process"});
    INFO(processed.out << processed.err);
    REQUIRE(processed.exitCode == 0);
    int told = 0;
    db->session() << "SELECT COUNT(*) FROM outbox WHERE recipients LIKE '%alice@example.test%'", into(told), now;
    CHECK(told == 1);  // the sender is told, as for any mail over the limit

    const long peak = childPeakMb();
    INFO("peak RSS of fetch, process and inspect " << peak << " MB");
    CHECK(peak < kBoundMb);
}
