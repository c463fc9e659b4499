// Helpers shared by the unit and integration tests: temporary directories, the
// real supportmail binary run as a child process, small file utilities.
#pragma once

#include <string>
#include <vector>

namespace smtest {

/// A fresh directory under /tmp, removed (recursively) when the object dies.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    friend std::string testDatabaseUrl(const TempDir& dir);
    std::string path_;
    mutable std::string pgSchema_;  ///< the database testDatabaseUrl made for this dir (dropped with it)
};

/// The database a test works on: "sqlite:DIR/supportmail.db", or, when the
/// environment names a PostgreSQL server (SUPPORTMAIL_TEST_POSTGRES=conninfo, set by
/// ctest's PG fixture for the "unit-pg:" entries), a fresh database of its own on that
/// server, made on the first call for dir and dropped with dir. Same URL for the
/// same dir on every call.
std::string testDatabaseUrl(const TempDir& dir);
/// True when testDatabaseUrl gives PostgreSQL.
bool testingOnPostgres();

struct RunResult {
    int exitCode = -1;
    std::string out;
    std::string err;
    bool timedOut = false;  ///< killed by the watchdog (err then begins with its stacks)
};

/// How long a child may run before the watchdog kills it: under ctest's 300 s per
/// test, so a hung child fails its test with its threads' stacks instead of the
/// test timing out with nothing said.
constexpr int kDefaultRunSeconds = 240;

/// Runs the supportmail binary built with the tests, with args, extra environment
/// ("NAME=value") and optional stdin; waits for it, at most timeoutSeconds.
RunResult runSupportmail(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                         int timeoutSeconds = kDefaultRunSeconds);

/// Runs any program; same result shape. A child still running after timeoutSeconds
/// has every thread's stack taken (gdb, when installed) into err, then is killed
/// (SIGKILL); timedOut is set and exitCode is not 0.
RunResult runProgram(const std::string& program, const std::vector<std::string>& args,
                     const std::vector<std::string>& env = {}, int timeoutSeconds = kDefaultRunSeconds);

bool fileExists(const std::string& path);
void writeFile(const std::string& path, const std::string& content);
std::string readFile(const std::string& path);
/// Files in dir (not recursive), sorted.
std::vector<std::string> listFiles(const std::string& dir);

/// The project's source directory and ../shared.
std::string sourceDir();
std::string sharedDir();

/// Today as YYYY-MM-DD (UTC), the day the program under test takes for today.
std::string today();

/// ../shared/tools/validate_eml.py on a mail file: `check --crlf` (exit 0: the
/// validator finds the mail well-formed) and `extract` (its parse as JSON:
/// subject, text, to, has_html...).
RunResult checkEml(const std::string& file);
RunResult extractEml(const std::string& file);

/// A configuration file for tests: the project's plans and regions with the
/// database of testDatabaseUrl(dir), the transport and the extra lines. Returns its path.
std::string writeTestConfig(const TempDir& dir, const std::string& transportUrl, const std::string& extra = "");

/// n scaled by SUPPORTMAIL_TEST_SCALE (a factor, default 1; at least 1 is returned):
/// the many-worker tests run the sizes by default and fewer under the
/// sanitizers (scripts/test.sh sets 0.1 there).
int scaled(int n);

/// Sample reference data for tests (partners with contacts in DE, FR, VN, US).
std::string writeSamplePartners(const TempDir& dir, const std::string& emailDomain = "example.test");

}  // namespace smtest
