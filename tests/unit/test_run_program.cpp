// The tests' own child runner (tests/support): what every CLI and integration test
// stands on, so its two promises are checked here: the environment reaches the
// child with the given names replaced, and a hung child is killed at its deadline
// with its stacks taken, instead of hanging the test until ctest's timeout.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <unistd.h>

#include "support/test_support.h"

TEST_CASE("a child gets our environment with the given names replaced, and both its outputs", "[support]") {
    ::setenv("SMTEST_INHERITED", "from-parent", 1);
    ::setenv("SMTEST_REPLACED", "old", 1);
    const auto r = smtest::runProgram("/bin/sh", {"-c", "echo \"$SMTEST_INHERITED $SMTEST_REPLACED $SMTEST_NEW\"; "
                                                        "echo to-stderr >&2; exit 7"},
                                      {"SMTEST_REPLACED=new", "SMTEST_NEW=added"});
    ::unsetenv("SMTEST_INHERITED");
    ::unsetenv("SMTEST_REPLACED");
    CHECK(r.out == "from-parent new added\n");
    CHECK(r.err == "to-stderr\n");
    CHECK(r.exitCode == 7);
    CHECK_FALSE(r.timedOut);
}

TEST_CASE("a child still running at its deadline is killed, its stacks taken", "[support]") {
    const auto started = std::chrono::steady_clock::now();
    const auto r = smtest::runProgram("/bin/sh", {"-c", "echo started; exec sleep 60"}, {}, 1);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(r.timedOut);
    CHECK(r.exitCode == 256 + 9);  // SIGKILL, counted as POCO's wait() counts a signal
    CHECK(r.out == "started\n");
    CHECK(r.err.rfind("/bin/sh still running after 1 s, killed; its threads were:\n", 0) == 0);
    if (::access("/usr/bin/gdb", X_OK) == 0) CHECK(r.err.find("nanosleep") != std::string::npos);
    CHECK(took < std::chrono::seconds(30));
}

TEST_CASE("a program that cannot be run is an error, not an exit code", "[support]") {
    CHECK_THROWS_WITH(smtest::runProgram("/nonexistent/program", {}), Catch::Contains("cannot run /nonexistent/program"));
}
