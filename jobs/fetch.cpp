#include "jobs/fetch.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "jobs/crash_point.h"
#include "mail/inbound_source.h"
#include "mail/maildir_source.h"
#include "mail/mime_parser.h"
#include "store/inbound.h"

namespace sm::jobs {
namespace {

// Messages per commit (Maildir) and per flag update (IMAP), as many as a page of
// process.batch: groups of 50 spent a tenth of a Maildir fetch on the extra fsyncs.
constexpr std::size_t kGroup = 100;

std::string headerBlock(const std::string& raw) {
    auto p = raw.find("\r\n\r\n");
    if (p == std::string::npos) p = raw.find("\n\n");
    return p == std::string::npos ? raw.substr(0, std::min<std::size_t>(raw.size(), 64 * 1024)) : raw.substr(0, p + 2);
}

std::string messageIdOf(const std::string& raw) {
    try {
        return mail::headerMessageId(headerBlock(raw) + "\r\n");
    } catch (const std::exception&) {
        return "";
    }
}

store::InboundRow makeRow(const std::string& source, std::int64_t uidValidity, const std::string& key,
                          std::string raw) {
    store::InboundRow row;
    row.source = source;
    row.uidValidity = uidValidity;
    row.sourceKey = key;
    row.size = static_cast<std::int64_t>(raw.size());
    row.sha256 = store::sha256Hex(raw);
    row.messageId = messageIdOf(raw);
    row.raw = std::move(raw);
    return row;
}

/// A message over process.max_message_bytes, of which only the header block was
/// read: enough to answer the sender. Its hash is the header's (with the size),
/// as the body was never read.
store::InboundRow makeTooLargeRow(const std::string& source, std::int64_t uidValidity, const std::string& key,
                                  const std::string& header, std::uint64_t size) {
    auto row = makeRow(source, uidValidity, key, headerBlock(header) + "\r\n");
    row.sha256 = store::sha256Hex(row.raw + "\n" + std::to_string(size));
    row.size = static_cast<std::int64_t>(size);
    row.reason = "too_large:" + std::to_string(size);
    return row;
}

/// What a group of stored rows adds to the report once it is committed: the
/// report counts only what the database kept (a group rolled back by an error
/// counts nothing).
struct Tally {
    int fetched = 0, known = 0, tooLarge = 0;
    void add(store::Inbound& inbound, const store::InboundRow& row) {
        if (inbound.known(row.source, row.uidValidity, row.sourceKey, row.sha256)) {
            ++known;
        } else {
            inbound.insert(row);
            ++fetched;
            tooLarge += !row.reason.empty();
        }
    }
    void committedInto(FetchReport& report) {
        report.fetched += fetched;
        report.known += known;
        report.tooLarge += tooLarge;
        *this = Tally();
    }
};

/// One Maildir message as the reader thread leaves it for the writer: its row (with
/// the warning to log when only its header was kept), nothing when it vanished, or
/// the error reading it raised.
struct ReadMessage {
    std::optional<store::InboundRow> row;
    std::string warning;
    std::exception_ptr error;
};

// Maildir: a reader thread reads each file, hashes it and reads its Message-ID while
// this thread stores the ones before it: the two halves of a message's work (the
// file and the parse; the store) on the two cores. It holds at most kReadAheadBytes
// of messages read and not yet stored (and always the next one, however large: one
// message over max_message_bytes is never read whole). It has a copy of the writer's
// MaildirSource, taken after the listing (where each file is; not listed again): the
// writer's renames (markSeen) change what the writer's knows.
class MaildirReader {
public:
    static constexpr std::size_t kReadAheadBytes = 8u << 20;

    /// listed: the writer's source, as its listing left it (a copy: the reader's own).
    MaildirReader(const mail::MaildirSource& listed, std::vector<mail::InboundMessageRef> refs, std::string source,
                  std::uint64_t maxBytes)
        : src_(listed), refs_(std::move(refs)), source_(std::move(source)), maxBytes_(maxBytes) {
        thread_ = std::thread([this] { run(); });
    }
    ~MaildirReader() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }
    MaildirReader(const MaildirReader&) = delete;
    MaildirReader& operator=(const MaildirReader&) = delete;

    /// The next message, in the order of refs (waits for the reader).
    ReadMessage next() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !ready_.empty(); });
        ReadMessage m = std::move(ready_.front());
        ready_.pop_front();
        held_ -= m.row ? m.row->raw.size() : 0;
        lock.unlock();
        changed_.notify_all();
        return m;
    }

private:
    void run() {
        for (const auto& ref : refs_) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                changed_.wait(lock, [this] { return stop_ || ready_.empty() || held_ < kReadAheadBytes; });
                if (stop_) return;
            }
            ReadMessage m = read(ref);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                held_ += m.row ? m.row->raw.size() : 0;
                ready_.push_back(std::move(m));
            }
            changed_.notify_all();
        }
    }

    ReadMessage read(const mail::InboundMessageRef& ref) {
        ReadMessage m;
        try {
            if (ref.size <= maxBytes_) {
                try {
                    auto raw = src_.fetch(ref.key, maxBytes_);
                    if (!raw) return m;  // vanished
                    m.row = makeRow(source_, 0, ref.key, std::move(*raw));
                    return m;
                } catch (const mail::SourceError& e) {
                    if (e.kind() != mail::SourceError::Kind::TooLarge) throw;
                    // grew past the limit since it was listed: recorded as too large below
                }
            }
            auto part = src_.fetchHeader(ref.key);
            if (!part) return m;  // vanished
            m.row = makeTooLargeRow(source_, 0, ref.key, part->header, part->size);
            m.warning = source_ + ": message " + ref.key + " has " + std::to_string(part->size) +
                        " bytes, over process.max_message_bytes (" + std::to_string(maxBytes_) +
                        "): stored its header only";
        } catch (...) {
            m.row.reset();
            m.error = std::current_exception();
        }
        return m;
    }

    mail::MaildirSource src_;
    const std::vector<mail::InboundMessageRef> refs_;
    const std::string source_;
    const std::uint64_t maxBytes_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<ReadMessage> ready_;
    std::size_t held_ = 0;  // bytes of the rows in ready_
    bool stop_ = false;
    std::thread thread_;  // last: started once everything above is
};

// Maildir: local files, committed a group per transaction: no network I/O while the
// write lock is held. The files are read by a MaildirReader, one group ahead at most.
void fetchMaildir(store::Database& db, const config::Settings& settings, const config::InboundSettings& in,
                  FetchReport& report, Poco::Logger& log) {
    const std::string path = in.url.substr(8);
    const auto maxBytes = static_cast<std::uint64_t>(settings.process.maxMessageBytes);
    mail::MaildirSource src(path);
    const std::string source = src.describe();
    store::Inbound inbound(db);
    const auto refs = src.listUnseen();
    if (refs.empty()) return;
    MaildirReader reader(src, refs, source, maxBytes);
    for (std::size_t start = 0; start < refs.size(); start += kGroup) {
        std::vector<std::string> done;
        Tally tally;
        {
            store::Transaction tx(db);
            for (std::size_t i = start; i < std::min(refs.size(), start + kGroup); ++i) {
                ReadMessage m = reader.next();
                if (m.error) std::rethrow_exception(m.error);
                if (!m.row) continue;  // vanished
                if (!m.warning.empty()) log.warning(m.warning);
                tally.add(inbound, *m.row);
                done.push_back(refs[i].key);
            }
            tx.commit();
        }
        tally.committedInto(report);
        crashPoint("fetch.after_commit");
        src.markSeen(done);
        log.information(source + ": stored " + std::to_string(done.size()) + " messages");
    }
}

// IMAP: each message is downloaded with no transaction open, then stored in a
// short transaction of its own; the server is marked per group of kGroup once
// they are all committed. A transaction never waits on the network, so other
// jobs' writes never wait on a slow or silent server.
void fetchImap(store::Database& db, const config::Settings& settings, const config::InboundSettings& in,
               FetchReport& report, Poco::Logger& log) {
    const mail::ImapSettings is = config::imapSettings(settings, in);
    auto src = mail::makeImapSource(is);
    const std::string source = in.url;
    store::Inbound inbound(db);
    auto state = src->open();
    auto sync = inbound.sync(source);
    std::uint32_t lastUid = 0;
    if (sync && sync->uidValidity == state.uidValidity) lastUid = static_cast<std::uint32_t>(sync->lastUid);
    else if (sync) log.warning(source + ": UIDVALIDITY changed from " + std::to_string(sync->uidValidity) + " to " +
                               std::to_string(state.uidValidity) + "; re-syncing (stored messages are recognised)");
    auto refs = src->listSince(lastUid);
    for (std::size_t start = 0; start < refs.size(); start += kGroup) {
        std::vector<std::uint32_t> done;
        std::uint32_t maxUid = lastUid;
        for (std::size_t i = start; i < std::min(refs.size(), start + kGroup); ++i) {
            const auto& ref = refs[i];
            const std::string key = std::to_string(ref.uid);
            std::optional<store::InboundRow> row;
            try {
                if (ref.size <= is.maxMessageBytes) {
                    try {
                        row = makeRow(source, state.uidValidity, key, src->fetch(ref));
                    } catch (const mail::SourceError& e) {
                        // RFC822.SIZE said less than the server sent: the download stopped at the limit
                        if (e.kind() != mail::SourceError::Kind::TooLarge) throw;
                    }
                }
                if (!row) {
                    row = makeTooLargeRow(source, state.uidValidity, key, src->fetchHeader(ref), ref.size);
                    log.warning(source + ": message UID " + key + " has " + std::to_string(ref.size) +
                                " bytes, over process.max_message_bytes (" + std::to_string(is.maxMessageBytes) +
                                "): stored its header only");
                }
            } catch (const mail::SourceError& e) {
                if (e.kind() == mail::SourceError::Kind::MessageGone) continue;
                throw;
            }
            Tally tally;
            {
                store::Transaction tx(db);
                tally.add(inbound, *row);
                tx.commit();
            }
            tally.committedInto(report);
            done.push_back(ref.uid);
            maxUid = std::max(maxUid, ref.uid);
        }
        crashPoint("fetch.after_commit");
        if (in.moveTo.empty()) src->markSeen(done);
        else src->moveTo(done, in.moveTo);
        // The sync point moves only once the server has them marked: a crash before
        // this line lists them again, finds them stored, and marks them then.
        {
            store::Transaction tx(db);
            inbound.setSync(source, {state.uidValidity, maxUid});
            tx.commit();
        }
        lastUid = maxUid;
        log.information(source + ": stored " + std::to_string(done.size()) + " messages");
    }
    if (refs.empty() && (!sync || sync->uidValidity != state.uidValidity)) {
        store::Transaction tx(db);
        inbound.setSync(source, {state.uidValidity, lastUid});
        tx.commit();
    }
}

}  // namespace

FetchReport fetch(store::Database& db, const config::Settings& settings, Poco::Logger& log) {
    FetchReport report;
    for (const auto& in : settings.inbound) {
        try {
            if (in.url.rfind("maildir:", 0) == 0) fetchMaildir(db, settings, in, report, log);
            else fetchImap(db, settings, in, report, log);
        } catch (const mail::SourceError& e) {
            report.errors.push_back("inbound." + in.name + ": " + e.what());
            (e.temporary() ? report.temporaryFailure : report.permanentFailure) = true;
            log.error("inbound." + in.name + ": " + e.what());
        }
    }
    return report;
}

}  // namespace sm::jobs
