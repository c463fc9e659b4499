// process: claims pages of pending inbound mail and hands each message to a
// processing::MessageHandler (jobs/process/), one savepoint per message.
#include "jobs/process.h"

#include "jobs/crash_point.h"
#include "jobs/process/message_handler.h"
#include "store/database.h"
#include "store/inbound.h"

namespace sm::jobs {

ProcessReport process(store::Database& db, const app::Settings& settings, const mail::TemplateSet& templates,
                      Poco::Logger& log, const Poco::Timestamp& now, ProgressSink* progress) {
    ProcessReport report;
    store::Inbound inbound(db);
    if (progress) progress->begin(inbound.counts().pending);
    std::int64_t afterId = 0;
    // A page of messages (process.batch) is one transaction, each message inside it
    // its own savepoint: one fsync per page instead of one per message (about half
    // of a run's time), and still all or nothing per message. A crash before the
    // commit leaves the whole page pending: the next run does it again, and since
    // everything a message causes (incident, debit, reply in the outbox, its own end
    // state) is in that transaction, nothing is done twice. A message whose handling
    // throws is rolled back alone; the page so far is committed, then the error goes up.
    for (;;) {
        auto rows = inbound.pending(afterId, settings.process.batch);
        if (rows.empty()) break;
        store::Transaction tx(db);
        std::int64_t inPage = 0;
        for (const auto& row : rows) {
            afterId = row.id;
            store::Savepoint message(db, "message");
            try {
                processing::MessageHandler handler(db, settings, templates, log, now, report);
                handler.handle(row);
            } catch (...) {
                message.rollback();  // this message's work only
                tx.commit();
                progressAdvance(progress, inPage);
                throw;
            }
            message.release();
            ++inPage;
        }
        crashPoint("process.before_commit");
        tx.commit();
        progressAdvance(progress, inPage);
    }
    return report;
}

}  // namespace sm::jobs
