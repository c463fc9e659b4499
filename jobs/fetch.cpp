#include "jobs/fetch.h"

#include <algorithm>
#include <optional>

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

// Maildir: local files, read one at a time (never more than max_message_bytes of
// one held) and committed a group per transaction: no network I/O while the
// write lock is held.
void fetchMaildir(store::Database& db, const config::Settings& settings, const config::InboundSettings& in,
                  FetchReport& report, Poco::Logger& log) {
    const std::string path = in.url.substr(8);
    const auto maxBytes = static_cast<std::uint64_t>(settings.process.maxMessageBytes);
    mail::MaildirSource src(path);
    const std::string source = src.describe();
    store::Inbound inbound(db);
    auto refs = src.listUnseen();
    for (std::size_t start = 0; start < refs.size(); start += kGroup) {
        std::vector<std::string> done;
        Tally tally;
        {
            store::Transaction tx(db);
            for (std::size_t i = start; i < std::min(refs.size(), start + kGroup); ++i) {
                const std::string& key = refs[i].key;
                std::optional<store::InboundRow> row;
                if (refs[i].size <= maxBytes) {
                    try {
                        if (auto raw = src.fetch(key, maxBytes)) row = makeRow(source, 0, key, std::move(*raw));
                        else continue;  // vanished
                    } catch (const mail::SourceError& e) {
                        if (e.kind() != mail::SourceError::Kind::TooLarge) throw;
                        // grew past the limit since it was listed: recorded as too large below
                    }
                }
                if (!row) {
                    auto part = src.fetchHeader(key);
                    if (!part) continue;  // vanished
                    row = makeTooLargeRow(source, 0, key, part->header, part->size);
                    log.warning(source + ": message " + key + " has " + std::to_string(part->size) +
                                " bytes, over process.max_message_bytes (" + std::to_string(maxBytes) +
                                "): stored its header only");
                }
                tally.add(inbound, *row);
                done.push_back(key);
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
