// status: what an operator asks first. Queue depths, the last run of each job and
// the job leases held, as text or (--json) as one JSON object for monitoring.
#include <sstream>

#include <Poco/DateTimeFormatter.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Timestamp.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "app/command.h"
#include "store/inbound.h"
#include "store/job_runs.h"
#include "store/leases.h"
#include "store/outbox.h"

using Poco::Util::Option;

namespace sm::app {
namespace {

std::string isoTime(std::int64_t unixSeconds) {
    return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(unixSeconds)),
                                           "%Y-%m-%dT%H:%M:%SZ");
}

Poco::Dynamic::Var countsJson(const std::string& text) {
    try {
        return Poco::JSON::Parser().parse(text.empty() ? "{}" : text);
    } catch (const Poco::Exception&) {
        return text;  // not JSON: shown as it was stored
    }
}

int runStatus(CommandContext& app, const Args& args) {
    app.applyLogging();
    auto& db = app.database();
    const std::int64_t nowAt = store::Database::nowSeconds();
    const auto in = store::Inbound(db).counts();
    const auto unanswered = store::Inbound(db).unansweredCounts();
    const auto outbox = store::Outbox(db).counts(nowAt);
    const auto runs = store::JobRuns(db).lastRuns();
    const auto leases = store::Leases(db).all();

    if (args.has("json")) {
        Poco::JSON::Object root(Poco::JSON_PRESERVE_KEY_ORDER);
        root.set("now", nowAt);
        Poco::JSON::Object::Ptr inbound = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        inbound->set("pending", in.pending);
        inbound->set("quarantined", in.quarantined);
        inbound->set("rejected", in.rejected);
        inbound->set("duplicate", in.duplicate);
        inbound->set("done", in.done);
        Poco::JSON::Object::Ptr notAnswered = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        for (const auto& [outcome, n] : unanswered) notAnswered->set(outcome, n);
        inbound->set("unanswered", notAnswered);
        root.set("inbound", inbound);
        Poco::JSON::Object::Ptr out = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        out->set("due", outbox.due);
        out->set("retrying", outbox.retrying);
        out->set("parked", outbox.parked);
        out->set("queued", outbox.queued);
        out->set("sent", outbox.sent);
        root.set("outbox", out);
        Poco::JSON::Array::Ptr jobs = new Poco::JSON::Array;
        for (const auto& r : runs) {
            Poco::JSON::Object::Ptr j = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
            j->set("job", r.job);
            j->set("started_at", r.startedAt);
            j->set("started", isoTime(r.startedAt));
            if (r.finishedAt) {
                j->set("finished_at", *r.finishedAt);
                j->set("finished", isoTime(*r.finishedAt));
            } else {
                j->set("finished_at", Poco::Dynamic::Var());
                j->set("finished", Poco::Dynamic::Var());
            }
            j->set("outcome", r.outcome);
            j->set("counts", countsJson(r.counts));
            j->set("error", r.error);
            j->set("holder", r.holder);
            jobs->add(j);
        }
        root.set("jobs", jobs);
        Poco::JSON::Array::Ptr held = new Poco::JSON::Array;
        for (const auto& l : leases) {
            Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
            o->set("job", l.job);
            o->set("holder", l.holder);
            o->set("acquired_at", l.acquiredAt);
            o->set("expires_at", l.expiresAt);
            o->set("expires", isoTime(l.expiresAt));
            o->set("expired", l.expired(nowAt));
            held->add(o);
        }
        root.set("leases", held);
        std::ostringstream s;
        root.stringify(s);
        app.out() << s.str() << "\n";
        return kExitOk;
    }

    auto& o = app.out();
    o << "inbound: " << in.pending << " pending, " << in.quarantined << " quarantined, " << in.rejected
      << " rejected, " << in.duplicate << " duplicate, " << in.done << " done\n";
    o << "unanswered:";
    if (unanswered.empty()) o << " none";
    for (std::size_t i = 0; i < unanswered.size(); ++i)
        o << (i ? ", " : " ") << unanswered[i].second << " " << unanswered[i].first;
    o << "\n";
    o << "outbox:  " << outbox.due << " due, " << outbox.retrying << " retrying, " << outbox.parked << " parked, "
      << outbox.queued << " queued, " << outbox.sent << " sent\n";
    o << "last runs:" << (runs.empty() ? " none\n" : "\n");
    for (const auto& r : runs) {
        o << "  " << r.job;
        for (std::size_t i = r.job.size(); i < 16; ++i) o << ' ';
        o << isoTime(r.startedAt) << " .. " << (r.finishedAt ? isoTime(*r.finishedAt) : "(not finished)") << "  "
          << r.outcome << "  " << r.counts;
        if (!r.error.empty()) o << "  error: " << r.error;
        o << "\n";
    }
    o << "leases:" << (leases.empty() ? " none held\n" : "\n");
    for (const auto& l : leases) {
        o << "  " << l.job;
        for (std::size_t i = l.job.size(); i < 16; ++i) o << ' ';
        o << "held by " << l.holder << " until " << isoTime(l.expiresAt)
          << (l.expired(nowAt) ? " (expired: the next run takes it over)" : "") << "\n";
    }
    return kExitOk;
}

}  // namespace

std::vector<Command> opsCommands() {
    return {
        {"status", "", "show queue depths, the last run of each job and the leases held",
         "Inbound: pending, quarantined, rejected, duplicate, done. Outbox: due now, retrying\n"
         "(queued after a failed attempt), parked, queued, sent. The last run of each job with\n"
         "its outcome, counts and error, and each job lease with its holder and expiry.\n"
         "--json prints one JSON object (keys inbound, outbox, jobs, leases) for monitoring.",
         [](Poco::Util::OptionSet& s) { s.addOption(Option("json", "", "print one JSON object")); }, 0, 0,
         runStatus},
    };
}

}  // namespace sm::app
