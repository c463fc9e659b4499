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

std::optional<std::string> MaildirSource::fetch(const std::string& key) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto entry = attempt == 0 ? locate(key) : scanFor(key);
        if (!entry) return std::nullopt;
        std::ifstream in(entry->path, std::ios::binary);
        if (!in) {
            if (errno == ENOENT) continue;  // renamed or deleted since: look again once
            throw SourceError(SourceError::Kind::Local, true,
                              "maildir: cannot read " + entry->path + ": " + std::strerror(errno));
        }
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (in.bad())
            throw SourceError(SourceError::Kind::Local, true, "maildir: read error on " + entry->path);
        return bytes;
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
