// A progress bar with rate and ETA on stderr, for the long batch runs (import,
// activate, process, deliver), drawn only when stderr is a terminal: under cron
// or systemd nothing is drawn and the run ends with its one-line summary.
//
//   activate [##########..........]  50%  5000/10000  1234/s  ETA 0:04
//
// The bar is redrawn at most ten times a second and cleared when the run ends (or
// when a log line is written to stderr: logging.h clears it first).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "jobs/progress.h"

namespace sm::app {

class TerminalProgress : public jobs::ProgressSink {
public:
    /// enabled false: draws nothing (not a terminal, --quiet, or the daemon).
    TerminalProgress(std::string label, bool enabled);
    ~TerminalProgress() override;
    TerminalProgress(const TerminalProgress&) = delete;
    TerminalProgress& operator=(const TerminalProgress&) = delete;

    void begin(std::int64_t total) override;
    void advance(std::int64_t n = 1) override;
    /// Clears the bar (also done by the destructor).
    void finish();

    std::int64_t done() const { return done_; }
    bool enabled() const { return enabled_; }

    /// One line of at most `width` columns. total < 0: unknown (no bar, no ETA).
    static std::string render(const std::string& label, std::int64_t done, std::int64_t total, double seconds,
                              int width);
    /// "0:04", "12:30", "1:02:03"
    static std::string formatDuration(double seconds);
    /// stderr is a terminal and TERM is not "dumb".
    static bool stderrIsTerminal();
    /// Wipes the bar from the terminal if one is drawn (the log does this first).
    static void clearLine();

private:
    void draw(bool force);

    std::string label_;
    bool enabled_;
    std::int64_t total_ = -1;
    std::int64_t done_ = 0;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point lastDraw_;
    bool drawnOnce_ = false;
};

}  // namespace sm::app
