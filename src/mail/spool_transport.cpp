#include "mail/spool_transport.h"

#include <dirent.h>
#include <cerrno>
#include <ctime>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>

#include <Poco/DigestEngine.h>
#include <Poco/Logger.h>
#include <Poco/SHA2Engine.h>
#include <stdexcept>
#include <utility>

namespace sm::mail {

namespace {

std::string errnoText(int err) {
    char buf[256];
    // GNU strerror_r may return a static string instead of filling buf
    const char* msg = strerror_r(err, buf, sizeof buf);
    return msg ? std::string(msg) : std::string("errno ") + std::to_string(err);
}

DeliveryOutcome failure(const std::string& what, const std::string& path, int err) {
    DeliveryOutcome out;
    out.status = DeliveryStatus::TemporaryFailure;
    out.serverUnavailable = true;  // the spool itself is unusable: stop this batch
    out.reply = "maildir: " + what + " " + path + ": " + errnoText(err);
    return out;
}

/// mkdir DIR if missing; 0 or errno.
int ensureDir(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) == 0) return 0;
    const int err = errno;
    if (err != EEXIST) return err;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

/// Creates DIR (and missing parents) plus DIR/{tmp,new,cur}; on error sets failedPath.
int ensureMaildir(const std::string& dir, std::string& failedPath) {
    // parents first, like mkdir -p
    for (std::size_t pos = 1; pos < dir.size(); ++pos) {
        if (dir[pos] != '/') continue;
        const std::string parent = dir.substr(0, pos);
        if (parent.empty() || parent.back() == '/') continue;
        if (const int err = ensureDir(parent)) {
            failedPath = parent;
            return err;
        }
    }
    for (const std::string& p : {dir, dir + "/tmp", dir + "/new", dir + "/cur"}) {
        if (const int err = ensureDir(p)) {
            failedPath = p;
            return err;
        }
    }
    return 0;
}

int fsyncPath(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    const int rc = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
}

std::string hostPart() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
    std::string out;
    for (const char* p = host; *p; ++p) {  // '/' and ':' are not allowed in the name
        if (*p == '/') out += "\\057";
        else if (*p == ':') out += "\\072";
        else out += *p;
    }
    return out;
}

}  // namespace

SpoolTransport::SpoolTransport(std::string directory) : dir_(std::move(directory)) {
    if (dir_.empty()) throw std::invalid_argument("SpoolTransport: empty directory");
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string SpoolTransport::uniqueName() {
    static std::atomic<unsigned long long> counter{0};
    static const std::string host = hostPart();
    thread_local std::mt19937_64 rng{[] {
        std::random_device rd;
        return (static_cast<unsigned long long>(rd()) << 32) ^ rd();
    }()};
    struct timeval tv {};
    ::gettimeofday(&tv, nullptr);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%lld.M%06ldP%ldQ%lluR%016llx.", static_cast<long long>(tv.tv_sec),
                  static_cast<long>(tv.tv_usec), static_cast<long>(::getpid()),
                  ++counter, static_cast<unsigned long long>(rng()));
    return buf + host;
}

std::string SpoolTransport::deliveryName(std::string_view messageId) {
    if (messageId.empty()) return uniqueName();
    Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
    engine.update(messageId.data(), static_cast<unsigned>(messageId.size()));
    // A fixed first part instead of the time: the same mail always gets the same name.
    return "supportmail." + Poco::DigestEngine::digestToHex(engine.digest()).substr(0, 40);
}

std::size_t SpoolTransport::removeStaleTmpFiles(std::int64_t now) {
    std::size_t removed = 0;
    const std::string tmp = dir_ + "/tmp";
    DIR* d = ::opendir(tmp.c_str());
    if (!d) return 0;  // not created yet: nothing to clean
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        const std::string path = tmp + "/" + name;
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        // "A program should delete files in tmp that haven't been accessed in 36
        // hours": the later of access and modification, so a file still written or
        // read is never taken.
        const std::int64_t touched = std::max<std::int64_t>(st.st_atime, st.st_mtime);
        if (now - touched > kStaleTmpSeconds && ::unlink(path.c_str()) == 0) ++removed;
    }
    ::closedir(d);
    return removed;
}

bool SpoolTransport::alreadyDelivered(const std::string& name) {
    struct stat st {};
    if (::stat((dir_ + "/new/" + name).c_str(), &st) == 0) return true;
    // A reader may have moved it to cur/, adding ":2,FLAGS". cur/ is listed once
    // and again only when it changed (its mtime): one stat per mail otherwise.
    const std::string cur = dir_ + "/cur";
    if (::stat(cur.c_str(), &st) != 0) return false;
    const auto changed = std::make_pair(static_cast<std::int64_t>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
    if (!curListed_ || changed != curMtime_) {
        curNames_.clear();
        if (DIR* d = ::opendir(cur.c_str())) {
            while (const dirent* e = ::readdir(d)) {
                const std::string n = e->d_name;
                curNames_.insert(n.substr(0, n.find(':')));
            }
            ::closedir(d);
        }
        curListed_ = true;
        curMtime_ = changed;
    }
    return curNames_.count(name) > 0;
}

DeliveryOutcome SpoolTransport::send(const Envelope& /*envelope*/, std::string_view messageId,
                                     std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!tmpCleaned_) {
        tmpCleaned_ = true;
        staleTmpRemoved_ = removeStaleTmpFiles(static_cast<std::int64_t>(::time(nullptr)));
        if (staleTmpRemoved_ > 0)
            Poco::Logger::get("supportmail")
                .warning(describe() + ": removed " + std::to_string(staleTmpRemoved_) +
                         " files from tmp/ untouched for 36 hours (left by writers that died)");
    }
    const std::string name = deliveryName(messageId);
    const std::string tmpPath = dir_ + "/tmp/" + name;
    const std::string newPath = dir_ + "/new/" + name;
    auto delivered = [&](const std::string& how) {
        DeliveryOutcome out;
        out.status = DeliveryStatus::Sent;
        out.reply = how + newPath;
        if (!messageId.empty()) out.reply += " (" + std::string(messageId) + ")";
        return out;
    };
    // A repeat (the run that wrote it died before marking it sent): not a second copy.
    if (!messageId.empty() && alreadyDelivered(name)) return delivered("already in the spool as ");

    // O_TRUNC, not O_EXCL: a leftover of our own for this mail (a crash while
    // writing it) is replaced. Only one deliver runs at a time (its lease), and
    // two mails never share a name.
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (messageId.empty() ? O_EXCL : O_TRUNC);
    int fd = ::open(tmpPath.c_str(), flags, 0640);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        // first use, or someone removed the directory: create it and try again
        std::string failedPath;
        if (const int err = ensureMaildir(dir_, failedPath)) return failure("cannot create", failedPath, err);
        fd = ::open(tmpPath.c_str(), flags, 0640);
    }
    if (fd < 0) return failure("cannot create", tmpPath, errno);

    const char* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            ::unlink(tmpPath.c_str());
            return failure("cannot write", tmpPath, err);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(tmpPath.c_str());
        return failure("cannot fsync", tmpPath, err);
    }
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmpPath.c_str());
        return failure("cannot close", tmpPath, err);
    }
    // link(2), not rename(2): it never replaces a file already in new/ (EEXIST:
    // the mail is there already).
    int linked = ::link(tmpPath.c_str(), newPath.c_str());
    if (linked != 0 && errno == ENOENT) {  // new/ missing (someone removed it)
        std::string failedPath;
        if (ensureMaildir(dir_, failedPath) == 0) linked = ::link(tmpPath.c_str(), newPath.c_str());
        else errno = ENOENT;
    }
    if (linked != 0) {
        const int err = errno;
        ::unlink(tmpPath.c_str());
        if (err == EEXIST) return delivered("already in the spool as ");
        return failure("cannot move to", newPath, err);
    }
    ::unlink(tmpPath.c_str());
    // make the new name durable; if that fails, take the mail back so that a retry
    // cannot deliver it twice
    if (const int err = fsyncPath(dir_ + "/new")) {
        ::unlink(newPath.c_str());
        return failure("cannot fsync", dir_ + "/new", err);
    }
    return delivered("stored as ");
}

std::string SpoolTransport::describe() const { return "maildir:" + dir_; }

}  // namespace sm::mail
