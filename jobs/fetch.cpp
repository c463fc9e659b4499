#include "jobs/fetch.h"

#include <algorithm>

#include "jobs/crash_point.h"
#include "mail/inbound_source.h"
#include "mail/maildir_source.h"
#include "mail/mime_parser.h"
#include "store/inbound.h"

namespace sm::jobs {
namespace {

constexpr std::size_t kGroup = 50;  // messages per commit

std::string headerBlock(const std::string& raw) {
    auto p = raw.find("\r\n\r\n");
    if (p == std::string::npos) p = raw.find("\n\n");
    return p == std::string::npos ? raw.substr(0, std::min<std::size_t>(raw.size(), 64 * 1024)) : raw.substr(0, p + 2);
}

std::string messageIdOf(const std::string& raw) {
    try {
        return mail::parseMail(headerBlock(raw) + "\r\n").messageId;
    } catch (const std::exception&) {
        return "";
    }
}

store::InboundRow makeRow(const std::string& source, std::int64_t uidValidity, const std::string& key,
                          std::string raw, std::int64_t maxBytes) {
    store::InboundRow row;
    row.source = source;
    row.uidValidity = uidValidity;
    row.sourceKey = key;
    row.size = static_cast<std::int64_t>(raw.size());
    row.sha256 = store::sha256Hex(raw);
    if (row.size > maxBytes) {
        // Keep the headers only: enough to answer the sender.
        row.reason = "too_large:" + std::to_string(row.size);
        raw = headerBlock(raw);
    }
    row.messageId = messageIdOf(raw);
    row.raw = std::move(raw);
    return row;
}

void fetchMaildir(store::Database& db, const app::Settings& settings, const app::InboundSettings& in,
                  FetchReport& report, Poco::Logger& log) {
    const std::string path = in.url.substr(8);
    mail::MaildirSource src(path);
    const std::string source = src.describe();
    store::Inbound inbound(db);
    auto refs = src.listUnseen();
    for (std::size_t start = 0; start < refs.size(); start += kGroup) {
        std::vector<std::string> done;
        {
            store::Transaction tx(db);
            for (std::size_t i = start; i < std::min(refs.size(), start + kGroup); ++i) {
                auto raw = src.fetch(refs[i].key);
                if (!raw) continue;  // vanished
                auto row = makeRow(source, 0, refs[i].key, std::move(*raw), settings.process.maxMessageBytes);
                if (inbound.known(source, 0, row.sourceKey, row.sha256)) {
                    ++report.known;
                } else {
                    inbound.insert(row);
                    ++report.fetched;
                    report.tooLarge += !row.reason.empty();
                }
                done.push_back(refs[i].key);
            }
            tx.commit();
        }
        crashPoint("fetch.after_commit");
        src.markSeen(done);
        log.information(source + ": stored " + std::to_string(done.size()) + " messages");
    }
}

void fetchImap(store::Database& db, const app::Settings& settings, const app::InboundSettings& in,
               FetchReport& report, Poco::Logger& log) {
    const mail::ImapSettings is = app::imapSettings(settings, in);
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
        {
            store::Transaction tx(db);
            for (std::size_t i = start; i < std::min(refs.size(), start + kGroup); ++i) {
                const auto& ref = refs[i];
                std::string raw;
                if (ref.size > is.maxMessageBytes) {
                    try {
                        raw = src->fetchHeader(ref) + "\r\n";
                    } catch (const mail::SourceError& e) {
                        if (e.kind() == mail::SourceError::Kind::MessageGone) continue;
                        throw;
                    }
                } else {
                    try {
                        raw = src->fetch(ref);
                    } catch (const mail::SourceError& e) {
                        if (e.kind() == mail::SourceError::Kind::MessageGone) continue;
                        throw;
                    }
                }
                auto row = makeRow(source, state.uidValidity, std::to_string(ref.uid), std::move(raw),
                                   settings.process.maxMessageBytes);
                if (ref.size > is.maxMessageBytes) {
                    row.size = static_cast<std::int64_t>(ref.size);
                    row.reason = "too_large:" + std::to_string(ref.size);
                }
                if (inbound.known(source, state.uidValidity, row.sourceKey, row.sha256)) {
                    ++report.known;
                } else {
                    inbound.insert(row);
                    ++report.fetched;
                    report.tooLarge += !row.reason.empty();
                }
                done.push_back(ref.uid);
                maxUid = std::max(maxUid, ref.uid);
            }
            tx.commit();
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

FetchReport fetch(store::Database& db, const app::Settings& settings, Poco::Logger& log) {
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
