// Inbound mail from a local Maildir (the embedded default: no IMAP server needed).
//
// A message is a file in new/ or cur/. Its key is the unique part of the file name,
// the part before ':' ("1700000000.M1P2.host"); the key stays the same when the file
// moves from new/ to cur/ or its flags change, so the fetch job stores it the way it
// stores an IMAP (UIDVALIDITY, UID) pair, and a message is processed once.
//
// The job's loop, as for IMAP: list → fetch → store and COMMIT → markSeen.
//
//     MaildirSource src("/var/mail/support/Maildir");
//     for (auto& ref : src.listUnseen()) {            // uid = 0, key = unique name
//         auto raw = src.fetch(ref.key);              // nullopt: the file vanished
//         if (!raw) continue;
//         ...store *raw with ref.key, commit...
//         src.markSeen(ref.key);                      // new/x → cur/x:2,S
//     }
//
// Marking is a rename(2) inside the Maildir, atomic and compatible with Dovecot,
// mutt & co. It is not fsync'd: if a crash undoes it, the message is listed again and
// the job's duplicate check (same key) skips it. Not thread-safe: one object per thread;
// other processes may deliver, rename or delete files concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mail/inbound_source.h"

namespace sm::mail {

class MaildirSource {
public:
    /// dir is the Maildir itself (holding new/, cur/ and tmp/). Throws
    /// SourceError(Configuration) if new/ or cur/ is not a directory.
    explicit MaildirSource(std::string dir);

    /// Messages in new/ and cur/ that have neither the S (seen) nor the T (trashed)
    /// flag, oldest first (file mtime, then key); uid = 0, key set, size = file size.
    /// Dot files and non-regular files are skipped. Throws SourceError(Local) if a
    /// directory cannot be read.
    std::vector<InboundMessageRef> listUnseen();

    /// The file's bytes, unchanged. std::nullopt if no file has this key any more.
    /// Never holds more than maxBytes + 1 of it: a file over maxBytes (its size is
    /// looked at before reading, and the read is bounded) throws
    /// SourceError(TooLarge). Throws SourceError(Local) on other read errors,
    /// std::invalid_argument for a key that is empty or contains '/' or ':'.
    std::optional<std::string> fetch(const std::string& key, std::uint64_t maxBytes = UINT64_MAX);

    /// The header block of a message (at most its first kMaxHeaderBytes, cut after
    /// the blank line that ends the header when there is one) and the file's size:
    /// for answering the sender of a message too large to read. nullopt if the file
    /// vanished; errors as fetch().
    struct HeaderPart {
        std::string header;
        std::uint64_t size = 0;
    };
    static constexpr std::uint64_t kMaxHeaderBytes = 128 * 1024;
    std::optional<HeaderPart> fetchHeader(const std::string& key);

    /// Adds the S flag: renames new/KEY or cur/KEY:2,FLAGS to cur/KEY:2,FLAGS+S (other
    /// flags kept, sorted as the Maildir spec asks). Returns true if the message is now
    /// marked (also when it already was), false if the file vanished (skipped).
    /// Throws SourceError(Local) if the rename fails for another reason.
    bool markSeen(const std::string& key);

    /// markSeen for each key; returns how many are marked now; vanished ones are skipped.
    std::size_t markSeen(const std::vector<std::string>& keys);

    /// "maildir:/path".
    std::string describe() const;

    const std::string& directory() const { return dir_; }

private:
    struct Entry {
        std::string path;   // full path of the file as last seen
        std::string flags;  // after ":2,"
    };
    std::optional<Entry> locate(const std::string& key);
    std::optional<Entry> scanFor(const std::string& key);

    std::string dir_;
    std::map<std::string, Entry> known_;  // key → where the last listing found it
};

}  // namespace sm::mail
