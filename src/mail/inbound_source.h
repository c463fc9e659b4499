// Where inbound mail comes from: an IMAP mailbox (libcurl, imap:// with optional
// STARTTLS or imaps://). The Maildir source is in maildir_source.h.
//
// The fetch job drives a source like this, and commits the raw message to the
// database BEFORE it changes anything on the server, so a crash loses nothing:
//
//     auto src = makeImapSource(settings);
//     MailboxState st = src->open();              // compare st.uidValidity with the stored one
//     for (auto& ref : src->listSince(lastUid)) { // ascending UIDs > lastUid, with sizes
//         if (ref.size > settings.maxMessageBytes) { ...record as too large...; continue; }
//         std::string raw = src->fetch(ref);      // BODY.PEEK: does not set \Seen
//         ...store raw with (uidValidity, uid), commit...
//     }
//     src->markSeen(done);  or  src->moveTo(done, "Processed");
//
// One source object holds ONE libcurl easy handle, so all its commands share one
// connection, one login and one SELECT. Not thread-safe: one object per thread.
// After a failure the next call reconnects (and logs in and selects again).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sm::mail {

/// One message on the server. IMAP: uid > 0 and key empty. Maildir (maildir_source.h):
/// uid = 0 and key = the unique part of the file name.
struct InboundMessageRef {
    std::uint32_t uid = 0;
    std::uint64_t size = 0;  ///< RFC822.SIZE on IMAP, the file size on Maildir
    std::string key;
};

/// The selected mailbox as the server reported it in the SELECT response.
struct MailboxState {
    std::uint32_t uidValidity = 0;  ///< never 0 on a conforming server
    std::uint32_t uidNext = 0;      ///< 0 if the server did not say
    std::uint32_t exists = 0;       ///< number of messages
};

/// Every failure of a source. temporary() says whether retrying later can help
/// (connection refused, timeout, lost connection, TLS handshake) or not (login
/// denied, certificate rejected, missing mailbox, a response we cannot read, ...).
/// Messages never contain the password.
class SourceError : public std::runtime_error {
public:
    enum class Kind {
        Connection,          ///< cannot reach or lost the server (temporary)
        Authentication,      ///< login denied: "authentication failed for user X on host:port"
        Configuration,       ///< bad URL/TLS setup, certificate rejected, mailbox missing
        Server,              ///< the server answered NO/BAD to a command
        Protocol,            ///< a response we could not read (the connection is then reset)
        MessageGone,         ///< the UID (or Maildir file) no longer exists
        TooLarge,            ///< the message exceeds maxMessageBytes (nothing was downloaded)
        UidValidityChanged,  ///< the mailbox was recreated since open(): UIDs mean other mails
        Local,               ///< local I/O error (Maildir)
    };
    SourceError(Kind kind, bool temporary, const std::string& what)
        : std::runtime_error(what), kind_(kind), temporary_(temporary) {}
    Kind kind() const noexcept { return kind_; }
    bool temporary() const noexcept { return temporary_; }

private:
    Kind kind_;
    bool temporary_;
};

/// A mailbox on an IMAP server, UID-based.
class InboundSource {
public:
    virtual ~InboundSource() = default;

    /// Connects and logs in if needed, SELECTs the mailbox (read-write) and returns
    /// its UIDVALIDITY, UIDNEXT and message count. Call it first, and again at the
    /// start of each run. From then on, if a reconnect finds a different UIDVALIDITY,
    /// every call throws SourceError(UidValidityChanged) until open() is called again.
    virtual MailboxState open() = 0;

    /// Messages with UID > lastUid, ascending, each with its RFC822.SIZE, so a caller
    /// can reject big ones without downloading them (UID SEARCH UID n+1:*, then
    /// UID FETCH set (RFC822.SIZE) in batches of 100). Messages expunged between the
    /// two commands are left out. lastUid = 0 lists everything.
    virtual std::vector<InboundMessageRef> listSince(std::uint32_t lastUid) = 0;

    /// The raw message, byte for byte (CRLF as stored on the server), read with
    /// BODY.PEEK[] so \Seen is NOT set. Throws SourceError: MessageGone if the UID no
    /// longer exists, TooLarge if it exceeds maxMessageBytes, Protocol if the response
    /// is unreadable (one hostile message then costs that message, not the connection).
    virtual std::string fetch(const InboundMessageRef& ref) = 0;

    /// The message's header block (at most its first 128 KB), without setting \Seen:
    /// for answering the sender of a message too large to download.
    virtual std::string fetchHeader(const InboundMessageRef& ref) = 0;
    /// Sets \Seen on these UIDs (UID STORE set +FLAGS.SILENT (\Seen), ranges, batched).
    /// UIDs that no longer exist are ignored by the server. Empty input: no command.
    virtual void markSeen(const std::vector<std::uint32_t>& uids) = 0;

    /// Moves these UIDs into folder (UID MOVE; UID COPY + STORE \Deleted + UID EXPUNGE
    /// on servers with UIDPLUS but without MOVE), creating the folder first if it is
    /// missing. folder is an IMAP mailbox name in ASCII ("Processed", "Archive/2024"),
    /// without CR, LF or NUL (std::invalid_argument otherwise).
    virtual void moveTo(const std::vector<std::uint32_t>& uids, const std::string& folder) = 0;

    /// "imaps://host:port/INBOX (user ivan)": for logs; never the password.
    virtual std::string describe() const = 0;
};

struct ImapSettings {
    /// imap://host[:port][/MAILBOX] or imaps://host[:port][/MAILBOX]; the mailbox is
    /// percent-encoded as in RFC 5092 and defaults to INBOX. No credentials in the URL.
    std::string url;
    bool startTls = false;          ///< imap:// only: require STARTTLS (fail if not offered)
    bool verifyPeer = true;         ///< verify the certificate and the host name
    std::string caFile;             ///< PEM CA bundle; empty: the system's
    std::string username, password;
    long connectTimeoutSeconds = 15;
    long timeoutSeconds = 60;       ///< per IMAP command (a big message is several commands)
    std::uint64_t maxMessageBytes = 25 * 1024 * 1024;
};

/// Validates the settings (std::invalid_argument for a malformed URL) but does not
/// connect: the first call (normally open()) does.
std::unique_ptr<InboundSource> makeImapSource(const ImapSettings& settings);

}  // namespace sm::mail
