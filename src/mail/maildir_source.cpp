// Maildir inbound source: listing, reading and flagging files per the Maildir
// convention (https://cr.yp.to/proto/maildir.html, "info" part ":2,FLAGS").
#include "mail/maildir_source.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <tuple>

namespace sm::mail {

namespace {

bool isDirectory(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// "key:2,FS" → {"key", "FS"}; "key" → {"key", ""}. Only the ":2," info is understood.
std::pair<std::string, std::string> splitName(const std::string& name) {
    const auto colon = name.find(':');
    if (colon == std::string::npos) return {name, ""};
    const std::string info = name.substr(colon + 1);
    return {name.substr(0, colon), info.rfind("2,", 0) == 0 ? info.substr(2) : ""};
}

struct Listed {
    std::string key, path, flags;
    std::uint64_t size = 0;
    std::int64_t mtimeNs = 0;
};

/// Regular, non-dot files of dir. Throws SourceError(Local) if dir cannot be read.
std::vector<Listed> listDir(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        throw SourceError(SourceError::Kind::Local, true,
                          "maildir: cannot read " + dir + ": " + std::strerror(errno));
    std::vector<Listed> out;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        Listed l;
        l.path = dir + "/" + e->d_name;
        struct stat st{};
        if (::stat(l.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // vanished or not a file
        std::tie(l.key, l.flags) = splitName(e->d_name);
        l.size = static_cast<std::uint64_t>(st.st_size);
        l.mtimeNs = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        out.push_back(std::move(l));
    }
    ::closedir(d);
    return out;
}

void checkKey(const std::string& key) {
    if (key.empty() || key[0] == '.' || key.find_first_of("/:") != std::string::npos)
        throw std::invalid_argument("maildir: invalid message key '" + key + "'");
}

}  // namespace

MaildirSource::MaildirSource(std::string dir) : dir_(std::move(dir)) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    if (!isDirectory(dir_ + "/new") || !isDirectory(dir_ + "/cur"))
        throw SourceError(SourceError::Kind::Configuration, false,
                          "maildir: " + dir_ + " is not a Maildir (needs new/ and cur/ directories)");
}

std::vector<InboundMessageRef> MaildirSource::listUnseen() {
    std::vector<Listed> all = listDir(dir_ + "/new");
    std::vector<Listed> cur = listDir(dir_ + "/cur");
    all.insert(all.end(), std::make_move_iterator(cur.begin()), std::make_move_iterator(cur.end()));
    std::sort(all.begin(), all.end(),
              [](const Listed& a, const Listed& b) { return std::tie(a.mtimeNs, a.key) < std::tie(b.mtimeNs, b.key); });

    known_.clear();
    std::vector<InboundMessageRef> out;
    for (Listed& l : all) {
        if (known_.count(l.key)) continue;  // the same key twice (mid-rename by someone): once is enough
        known_[l.key] = Entry{l.path, l.flags};
        if (l.flags.find_first_of("ST") != std::string::npos) continue;
        InboundMessageRef ref;
        ref.key = l.key;
        ref.size = l.size;
        out.push_back(std::move(ref));
    }
    return out;
}

std::optional<MaildirSource::Entry> MaildirSource::scanFor(const std::string& key) {
    known_.erase(key);
    {
        const std::string p = dir_ + "/new/" + key;
        struct stat st{};
        if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return known_[key] = Entry{p, ""};
    }
    DIR* d = ::opendir((dir_ + "/cur").c_str());
    if (!d)
        throw SourceError(SourceError::Kind::Local, true,
                          "maildir: cannot read " + dir_ + "/cur: " + std::strerror(errno));
    std::optional<Entry> found;
    while (const dirent* e = ::readdir(d)) {
        const auto [k, flags] = splitName(e->d_name);
        if (k == key) {
            found = Entry{dir_ + "/cur/" + e->d_name, flags};
            break;
        }
    }
    ::closedir(d);
    if (found) known_[key] = *found;
    return found;
}

std::optional<MaildirSource::Entry> MaildirSource::locate(const std::string& key) {
    checkKey(key);
    auto it = known_.find(key);
    if (it != known_.end()) {
        struct stat st{};
        if (::stat(it->second.path.c_str(), &st) == 0) return it->second;
    }
    return scanFor(key);
}

namespace {

/// Opens a message file for reading; nullopt when it vanished (ENOENT).
std::optional<std::FILE*> openMessage(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f) return f;
    if (errno == ENOENT) return std::nullopt;
    throw SourceError(SourceError::Kind::Local, true, "maildir: cannot read " + path + ": " + std::strerror(errno));
}

/// Up to `limit` bytes from f into out (appending); throws on a read error.
void readUpTo(std::FILE* f, std::string& out, std::uint64_t limit, const std::string& path) {
    char buf[64 * 1024];
    while (out.size() < limit) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof buf, limit - out.size()));
        const std::size_t n = std::fread(buf, 1, want, f);
        out.append(buf, n);
        if (n < want) break;
    }
    if (std::ferror(f)) throw SourceError(SourceError::Kind::Local, true, "maildir: read error on " + path);
}

std::uint64_t fileSize(std::FILE* f) {
    struct stat st{};
    return ::fstat(::fileno(f), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

std::optional<std::string> MaildirSource::fetch(const std::string& key, std::uint64_t maxBytes) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto entry = attempt == 0 ? locate(key) : scanFor(key);
        if (!entry) return std::nullopt;
        const auto f = openMessage(entry->path);
        if (!f) continue;  // renamed or deleted since: look again once
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(*f, &std::fclose);
        // The size first, so a huge file is refused before a byte of it is held;
        // the read is bounded too, in case the file grows meanwhile.
        const std::uint64_t size = fileSize(*f);
        if (size > maxBytes)
            throw SourceError(SourceError::Kind::TooLarge, false,
                              "maildir: " + entry->path + " has " + std::to_string(size) +
                                  " bytes, more than the limit of " + std::to_string(maxBytes));
        std::string bytes;
        bytes.reserve(static_cast<std::size_t>(size));
        const std::uint64_t limit = maxBytes == UINT64_MAX ? maxBytes : maxBytes + 1;
        readUpTo(*f, bytes, limit, entry->path);
        if (bytes.size() > maxBytes)
            throw SourceError(SourceError::Kind::TooLarge, false,
                              "maildir: " + entry->path + " grew past the limit of " + std::to_string(maxBytes) +
                                  " bytes while being read");
        return bytes;
    }
    return std::nullopt;
}

std::optional<MaildirSource::HeaderPart> MaildirSource::fetchHeader(const std::string& key) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto entry = attempt == 0 ? locate(key) : scanFor(key);
        if (!entry) return std::nullopt;
        const auto f = openMessage(entry->path);
        if (!f) continue;
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(*f, &std::fclose);
        HeaderPart part;
        part.size = fileSize(*f);
        readUpTo(*f, part.header, kMaxHeaderBytes, entry->path);
        // Up to the blank line that ends the header block (kept), if it is there.
        auto end = part.header.find("\r\n\r\n");
        if (end != std::string::npos) part.header.resize(end + 4);
        else if ((end = part.header.find("\n\n")) != std::string::npos) part.header.resize(end + 2);
        return part;
    }
    return std::nullopt;
}

bool MaildirSource::markSeen(const std::string& key) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto entry = attempt == 0 ? locate(key) : scanFor(key);
        if (!entry) return false;
        const bool inCur = entry->path.compare(dir_.size(), 5, "/cur/") == 0;
        if (inCur && entry->flags.find('S') != std::string::npos) return true;
        std::string flags = entry->flags + "S";
        std::sort(flags.begin(), flags.end());
        flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
        const std::string target = dir_ + "/cur/" + key + ":2," + flags;
        if (::rename(entry->path.c_str(), target.c_str()) == 0) {
            known_[key] = Entry{target, flags};
            return true;
        }
        if (errno != ENOENT)
            throw SourceError(SourceError::Kind::Local, true,
                              "maildir: cannot rename " + entry->path + " to " + target + ": " + std::strerror(errno));
    }
    return false;
}

std::size_t MaildirSource::markSeen(const std::vector<std::string>& keys) {
    std::size_t n = 0;
    for (const auto& k : keys) n += markSeen(k) ? 1 : 0;
    return n;
}

std::string MaildirSource::describe() const { return "maildir:" + dir_; }

}  // namespace sm::mail
