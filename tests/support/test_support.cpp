#include "support/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/TemporaryFile.h>
#include <Poco/Timestamp.h>

#include <Poco/Data/Session.h>

#include "domain/dates.h"
#include "store/database.h"

namespace smtest {

TempDir::TempDir() {
    char tmpl[] = "/tmp/smtest.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    if (!pgSchema_.empty()) {
        try {
            auto db = sm::store::Database::open(std::string("postgresql:") + std::getenv("SUPPORTMAIL_TEST_POSTGRES"));
            db->session() << "DROP DATABASE IF EXISTS " + pgSchema_ + " WITH (FORCE)", Poco::Data::Keywords::now;
        } catch (...) {
            // The whole cluster is thrown away after the run.
        }
    }
    try {
        Poco::File(path_).remove(true);
    } catch (...) {
    }
}

bool testingOnPostgres() {
    const char* pg = std::getenv("SUPPORTMAIL_TEST_POSTGRES");
    return pg && *pg;
}

std::string testDatabaseUrl(const TempDir& dir) {
    if (!testingOnPostgres()) return "sqlite:" + dir.file("supportmail.db");
    const std::string conninfo = std::getenv("SUPPORTMAIL_TEST_POSTGRES");
    if (dir.pgSchema_.empty()) {
        // Named after the temporary directory: unique on this machine while it lives.
        std::string name = "t_" + Poco::Path(dir.path()).getFileName().substr(7);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (auto& c : name)
            if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
        auto db = sm::store::Database::open("postgresql:" + conninfo);
        db->session() << "CREATE DATABASE " + name, Poco::Data::Keywords::now;
        dir.pgSchema_ = name;
    }
    // The server's conninfo with its dbname replaced (POCO does not pass options='...' through).
    std::string info = conninfo;
    auto at = info.find("dbname=");
    if (at != std::string::npos) info.erase(at, info.find(' ', at) == std::string::npos ? std::string::npos
                                                                                       : info.find(' ', at) - at + 1);
    return "postgresql:" + info + (info.empty() || info.back() == ' ' ? "" : " ") + "dbname=" + dir.pgSchema_;
}

namespace {

// Every thread's stack of a running process, by gdb when installed.
std::string stacksOf(int pid) {
    if (::access("/usr/bin/gdb", X_OK) != 0) return "(no stacks: /usr/bin/gdb is not installed)\n";
    const auto r = runProgram("/usr/bin/gdb", {"-batch", "-nx", "-p", std::to_string(pid), "-ex", "thread apply all bt"},
                              {}, 60);
    return r.out + r.err;
}

}  // namespace

RunResult runProgram(const std::string& program, const std::vector<std::string>& args,
                     const std::vector<std::string>& env, int timeoutSeconds) {
    // posix_spawn, not fork: a test process with several threads (the overlap test
    // runs nine) that forks while another thread holds the sanitizer allocator's lock
    // leaves a child that deadlocks on its first malloc before exec (clang 14's ASan
    // takes no lock around fork; POCO's child calls putenv). posix_spawn runs nothing
    // of ours between the clone and the exec.
    std::vector<std::string> envStrings;
    {
        std::set<std::string> replaced;
        for (const auto& e : env) replaced.insert(e.substr(0, e.find('=')));
        for (char** p = environ; *p; ++p) {
            const std::string e(*p);
            if (!replaced.count(e.substr(0, e.find('=')))) envStrings.push_back(e);
        }
        for (const auto& e : env) envStrings.push_back(e.find('=') == std::string::npos ? e + "=" : e);
    }
    std::vector<char*> envp;
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argStrings = {program};
    argStrings.insert(argStrings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argStrings) argv.push_back(a.data());
    argv.push_back(nullptr);

    int outPipe[2], errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
        ::close(outPipe[0]);
        ::close(outPipe[1]);
        throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2);
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    if (spawned != 0) {
        ::close(outPipe[0]);
        ::close(errPipe[0]);
        throw std::runtime_error("cannot run " + program + ": " + std::strerror(spawned));
    }

    // Both pipes drained together, so a chatty child never blocks. The watchdog: a
    // child still running at the deadline has its stacks taken and is killed, so the
    // test fails saying where it hung instead of ctest's timeout saying nothing.
    RunResult r;
    std::string stacks;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
    struct pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open = 2;
    char buffer[65536];
    while (open > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 && !r.timedOut) {
            stacks = stacksOf(pid);
            ::kill(pid, SIGKILL);
            r.timedOut = true;
        }
        // After the kill, a grandchild could still hold a pipe: 10 s more, then stop reading.
        const int wait = r.timedOut ? 10000 : static_cast<int>(std::min<long long>(left.count(), 1000));
        const int ready = ::poll(fds, 2, wait);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) {
            const int error = errno;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            for (auto& f : fds)
                if (f.fd >= 0) ::close(f.fd);
            throw std::runtime_error("poll on " + program + "'s output: " + std::strerror(error));
        }
        if (ready == 0 && r.timedOut) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);  // as POCO's wait()
    if (r.timedOut)
        r.err = program + " still running after " + std::to_string(timeoutSeconds) + " s, killed; its threads were:\n" +
                stacks + "--- its stderr:\n" + r.err;
    return r;
}

RunResult runSupportmail(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         int timeoutSeconds) {
    return runProgram(SUPPORTMAIL_BINARY, args, env, timeoutSeconds);
}

bool fileExists(const std::string& path) { return Poco::File(path).exists(); }

void writeFile(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> listFiles(const std::string& dir) {
    std::vector<std::string> out;
    if (!Poco::File(dir).exists()) return out;
    for (Poco::DirectoryIterator it(dir), end; it != end; ++it)
        if (it->isFile()) out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

std::string sourceDir() { return SUPPORTMAIL_SOURCE_DIR; }
std::string sharedDir() { return SUPPORTMAIL_SHARED_DIR; }

std::string today() { return sm::domain::isoDate(Poco::Timestamp()); }

RunResult checkEml(const std::string& file) {
    return runProgram("/usr/bin/python3", {sharedDir() + "/tools/validate_eml.py", "check", "--crlf", file});
}

RunResult extractEml(const std::string& file) {
    return runProgram("/usr/bin/python3", {sharedDir() + "/tools/validate_eml.py", "extract", file});
}

int scaled(int n) {
    const char* factor = std::getenv("SUPPORTMAIL_TEST_SCALE");
    const double f = factor && std::atof(factor) > 0 ? std::atof(factor) : 1.0;
    return std::max(1, static_cast<int>(n * f + 0.5));
}

std::string writeTestConfig(const TempDir& dir, const std::string& transportUrl, const std::string& extra) {
    // The project's own file with the database, templates and transport replaced.
    std::ifstream in(sourceDir() + "/config/supportmail.properties");
    std::string line, text;
    while (std::getline(in, line)) {
        if (line.rfind("database.url", 0) == 0 || line.rfind("templates.dir", 0) == 0 ||
            line.rfind("transport.url", 0) == 0)
            continue;
        bool overridden = false;
        std::istringstream ex(extra);
        std::string e;
        while (std::getline(ex, e)) {
            auto eq = e.find('=');
            if (eq == std::string::npos) continue;
            std::string key = e.substr(0, e.find_last_not_of(" ", eq - 1) + 1);
            if (line.rfind(key + " ", 0) == 0 || line.rfind(key + "=", 0) == 0) overridden = true;
        }
        if (!overridden) text += line + "\n";
    }
    text += "database.url = " + testDatabaseUrl(dir) + "\n";
    text += "templates.dir = " + sourceDir() + "/templates\n";
    text += "transport.url = " + transportUrl + "\n";
    text += extra;
    if (!extra.empty() && extra.back() != '\n') text += "\n";
    std::string path = dir.file("supportmail.properties");
    writeFile(path, text);
    return path;
}

std::string writeSamplePartners(const TempDir& dir, const std::string& d) {
    std::string csv =
        "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,"
        "contact_language,location_id,location_name,location_country\n"
        "4648141,Contoso Cloud Partners,gold,DE,alice@" + d + ",Alice Schmidt,hq_primary,DE,en,,,\n"
        "4648141,Contoso Cloud Partners,gold,DE,bob@" + d + ",Bob Weber,member,DE,en,,,\n"
        "4648141,Contoso Cloud Partners,gold,DE,carol@" + d + ",Carol Dupont,location_primary,FR,en,CON-PAR,Contoso Paris,FR\n"
        "4648141,Contoso Cloud Partners,gold,DE,dave@" + d + ",Dave Miller,member,GB,en,,,\n"
        "5102233,Sông Hồng Software,silver,VN,erin@" + d + ",Nguyễn Văn An,hq_primary,VN,vi,,,\n"
        "5102233,Sông Hồng Software,silver,VN,frank@" + d + ",Trần Thị Bình,member,VN,vi,,,\n"
        "7001234,Fabrikam Action Partners,action_pack,US,grace@" + d + ",Grace Chen,hq_primary,US,en,,,\n";
    std::string path = dir.file("partners.csv");
    writeFile(path, csv);
    return path;
}

}  // namespace smtest
