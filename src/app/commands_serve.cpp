// serve: the daemon. One worker thread runs the scheduled jobs one at a time, each
// exactly as a cron run would (its own job lease, its own job_runs row); the main
// thread waits for SIGTERM/SIGINT (stop) and SIGHUP (reload the configuration).
//
// Stopping: the worker finishes the job it is in (the jobs commit per message, mail
// or group, so between jobs nothing is half-done) and runs no further one. If that
// job does not end within kStopGraceSeconds (e.g. a very large process batch), the
// daemon exits 75 without waiting: what was committed stays, the open transaction is
// rolled back by the database, and the lease expires after its ttl.
#include <signal.h>
#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <Poco/String.h>

#include "app/command.h"

namespace sm::app {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kStopGraceSeconds = 30;

/// The application's context with out() and err() captured, so a job's report
/// becomes a log line instead of stdout.
class CapturingContext : public CommandContext {
public:
    explicit CapturingContext(CommandContext& app) : app_(app) {}
    config::Settings& settings() override { return app_.settings(); }
    store::Database& database() override { return app_.database(); }
    Poco::Logger& log() override { return app_.log(); }
    std::ostream& out() override { return out_; }
    std::ostream& err() override { return err_; }
    void applyLogging() override { app_.applyLogging(); }
    /// The daemon draws no bars: its stderr is the journal.
    std::unique_ptr<TerminalProgress> progress(const std::string& label) override {
        return std::make_unique<TerminalProgress>(label, false);
    }
    void reloadSettings() override { app_.reloadSettings(); }
    std::string takeOut() { return take(out_); }
    std::string takeErr() { return take(err_); }

private:
    static std::string take(std::ostringstream& s) {
        std::string v = Poco::trim(s.str());
        s.str("");
        s.clear();
        for (auto& c : v)
            if (c == '\n') c = ';';
        return v;
    }
    CommandContext& app_;
    std::ostringstream out_, err_;
};

/// Seconds from now to the next HH:MM (minuteOfDay) in local time = UTC + offset.
long secondsUntilDaily(int minuteOfDay, int utcOffsetMinutes) {
    const long day = 86400;
    long local = static_cast<long>(std::time(nullptr)) + utcOffsetMinutes * 60L;
    long sinceMidnight = ((local % day) + day) % day;
    long wait = minuteOfDay * 60L - sinceMidnight;
    if (wait <= 0) wait += day;
    return wait;
}

class Scheduler {
public:
    explicit Scheduler(CommandContext& app) : app_(app), ctx_(app) {}

    void requestStop() {
        std::lock_guard<std::mutex> lk(mutex_);
        stop_ = true;
        cv_.notify_all();
    }
    void requestReload() {
        std::lock_guard<std::mutex> lk(mutex_);
        reload_ = true;
        cv_.notify_all();
    }
    /// Waits up to `seconds` for the worker to finish; true if it did.
    bool waitDone(int seconds) {
        std::unique_lock<std::mutex> lk(mutex_);
        return cv_.wait_for(lk, std::chrono::seconds(seconds), [this] { return done_; });
    }

    void run() {
        try {
            loop();
        } catch (const std::exception& e) {
            app_.log().critical(std::string("serve: the scheduler stopped: ") + e.what());
        }
        std::lock_guard<std::mutex> lk(mutex_);
        done_ = true;
        cv_.notify_all();
    }

private:
    struct Slot {
        Clock::time_point due;
        bool on = false;
    };

    void plan(bool startup) {
        const auto& sc = app_.settings().schedule;
        const int offset = app_.settings().calendar.utcOffsetMinutes;
        auto now = Clock::now();
        // Intervals: due now at start-up; after a reload keep what is due unless it became off.
        auto interval = [&](Slot& s, int seconds) {
            bool wasOn = s.on;
            s.on = seconds > 0;
            if (s.on && (startup || !wasOn)) s.due = now;
            if (s.on && !startup && wasOn && s.due > now + std::chrono::seconds(seconds))
                s.due = now + std::chrono::seconds(seconds);
        };
        interval(fetch_, sc.fetchProcessSeconds);
        interval(deliver_, sc.deliverSeconds);
        auto daily = [&](Slot& s, int minute) {
            s.on = minute >= 0;
            if (s.on) s.due = now + std::chrono::seconds(secondsUntilDaily(minute, offset));
        };
        daily(activate_, sc.activateMinute);
        daily(expire_, sc.expireMinute);
    }

    /// Runs the named command as the frame does (lease included) and logs the outcome.
    void runJob(const std::string& name) {
        const Command* cmd = nullptr;
        for (const auto& c : allCommands())
            if (c.name == name) cmd = &c;
        if (!cmd) throw std::logic_error("no command " + name);
        auto started = Clock::now();
        int rc = runCommandWithLease(ctx_, *cmd, Args{});
        long ms = static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
        std::string out = ctx_.takeOut(), err = ctx_.takeErr();
        auto& log = app_.log();
        if (rc == kExitLeaseHeld) {
            log.information("serve: " + name + ": skipped, another run holds the lease: " + err);
        } else if (rc == kExitOk) {
            log.notice("serve: " + (out.empty() ? name + ": done" : out) + " (" + std::to_string(ms) + " ms)");
            if (!err.empty()) log.warning("serve: " + name + ": " + err);
        } else {
            log.error("serve: " + name + ": failed (exit " + std::to_string(rc) + "): " +
                      (err.empty() ? std::string("no message") : err) + (out.empty() ? "" : "; " + out));
        }
    }

    bool stopping() {
        std::lock_guard<std::mutex> lk(mutex_);
        return stop_;
    }

    void loop() {
        plan(true);
        auto& log = app_.log();
        log.notice("serve: started (" + app_.settings().configFile + ")");
        for (;;) {
            {
                std::unique_lock<std::mutex> lk(mutex_);
                if (stop_) break;
                if (reload_) {
                    reload_ = false;
                    lk.unlock();
                    try {
                        app_.reloadSettings();
                        app_.applyLogging();
                        plan(false);
                        log.notice("serve: configuration reloaded from " + app_.settings().configFile);
                    } catch (const ConfigError& e) {
                        log.error(std::string("serve: reload failed, keeping the previous configuration: ") + e.what());
                    }
                    continue;
                }
                // Earliest slot; wait for it (or a signal).
                Slot* next = nullptr;
                for (Slot* s : {&fetch_, &deliver_, &activate_, &expire_})
                    if (s->on && (!next || s->due < next->due)) next = s;
                if (!next) {
                    cv_.wait(lk, [this] { return stop_ || reload_; });
                    continue;
                }
                if (next->due > Clock::now()) {
                    cv_.wait_until(lk, next->due, [this] { return stop_ || reload_; });
                    continue;
                }
            }
            // Something is due: the first due in this order.
            const auto& sc = app_.settings().schedule;
            auto now = Clock::now();
            if (fetch_.on && fetch_.due <= now) {
                runJob("fetch");
                if (!stopping()) runJob("process");
                fetch_.due = Clock::now() + std::chrono::seconds(sc.fetchProcessSeconds);
            } else if (deliver_.on && deliver_.due <= now) {
                runJob("deliver");
                deliver_.due = Clock::now() + std::chrono::seconds(sc.deliverSeconds);
            } else if (activate_.on && activate_.due <= now) {
                runJob("activate");
                activate_.due = Clock::now() + std::chrono::seconds(
                    secondsUntilDaily(sc.activateMinute, app_.settings().calendar.utcOffsetMinutes));
            } else if (expire_.on && expire_.due <= now) {
                runJob("expire");
                expire_.due = Clock::now() + std::chrono::seconds(
                    secondsUntilDaily(sc.expireMinute, app_.settings().calendar.utcOffsetMinutes));
            }
        }
        log.notice("serve: stopped");
    }

    CommandContext& app_;
    CapturingContext ctx_;
    Slot fetch_, deliver_, activate_, expire_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false, reload_ = false, done_ = false;
};

int runServe(CommandContext& app, const Args&) {
    app.applyLogging();
    app.settings();  // a broken configuration stops here (exit 78)
    app.database();  // likewise an unreachable database (69)

    // Block the signals before the worker exists, so that it (and the lease threads
    // it starts) inherit the mask and only this thread receives them, by sigwait.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    Scheduler scheduler(app);
    std::thread worker([&scheduler] { scheduler.run(); });
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            app.log().notice("serve: SIGHUP: reloading the configuration after the current job");
            scheduler.requestReload();
            continue;
        }
        app.log().notice(std::string("serve: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                         ": stopping after the current job");
        scheduler.requestStop();
        break;
    }
    if (!scheduler.waitDone(kStopGraceSeconds)) {
        app.log().error("serve: the current job did not finish within " + std::to_string(kStopGraceSeconds) +
                        " s; exiting without it (its open transaction is rolled back, its lease expires)");
        std::_Exit(kExitTempFail);
    }
    worker.join();
    return kExitOk;
}

}  // namespace

std::vector<Command> serveCommands() {
    return {
        {"serve", "", "run the jobs on the configured schedule (schedule.*) until stopped",
         "Runs in the foreground (for systemd; the global --daemon detaches). fetch + process\n"
         "every schedule.fetch_process seconds, deliver every schedule.deliver seconds, activate\n"
         "and expire daily at schedule.activate / schedule.expire, one job at a time, each with\n"
         "its own job lease like a cron run. SIGTERM/SIGINT: finish the current job and exit 0\n"
         "(after 30 s without it: exit 75). SIGHUP: reload the configuration between jobs (a\n"
         "broken file is logged and the previous configuration kept).",
         nullptr, 0, 0, runServe},
    };
}

}  // namespace sm::app
