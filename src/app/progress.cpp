#include "app/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>

namespace sm::app {
namespace {

std::mutex& terminalMutex() {
    static std::mutex m;
    return m;
}
bool& lineDrawn() {
    static bool drawn = false;
    return drawn;
}

int terminalWidth() {
    struct winsize ws {};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
    return 80;
}

}  // namespace

TerminalProgress::TerminalProgress(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), started_(std::chrono::steady_clock::now()), lastDraw_(started_) {}

TerminalProgress::~TerminalProgress() { finish(); }

void TerminalProgress::begin(std::int64_t total) {
    total_ = total;
    draw(true);
}

void TerminalProgress::advance(std::int64_t n) {
    done_ += n;
    draw(false);
}

void TerminalProgress::finish() {
    if (!enabled_) return;
    clearLine();
    enabled_ = false;
}

void TerminalProgress::draw(bool force) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && drawnOnce_ && now - lastDraw_ < std::chrono::milliseconds(100) && done_ != total_) return;
    lastDraw_ = now;
    drawnOnce_ = true;
    const double seconds = std::chrono::duration<double>(now - started_).count();
    const std::string line = render(label_, done_, total_, seconds, terminalWidth() - 1);
    std::lock_guard<std::mutex> lock(terminalMutex());
    std::cerr << '\r' << line << "\x1b[K" << std::flush;
    lineDrawn() = true;
}

void TerminalProgress::clearLine() {
    std::lock_guard<std::mutex> lock(terminalMutex());
    if (!lineDrawn()) return;
    std::cerr << "\r\x1b[K" << std::flush;
    lineDrawn() = false;
}

bool TerminalProgress::stderrIsTerminal() {
    const char* term = std::getenv("TERM");
    return ::isatty(STDERR_FILENO) == 1 && !(term && std::strcmp(term, "dumb") == 0);
}

std::string TerminalProgress::formatDuration(double seconds) {
    // Anything beyond 99 days is shown as 99 days (a rate near zero).
    const long s = seconds < 0 ? 0 : seconds > 99 * 86400.0 ? 99L * 86400 : std::lround(seconds);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

std::string TerminalProgress::render(const std::string& label, std::int64_t doneIn, std::int64_t total, double seconds,
                                     int width) {
    const std::int64_t done = std::max<std::int64_t>(doneIn, 0);
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    const std::string rateText = std::to_string(std::llround(rate)) + "/s";
    if (total < 0) {
        std::string line = label + "  " + std::to_string(done) + "  " + rateText;
        return line.size() > static_cast<std::size_t>(width) ? line.substr(0, width) : line;
    }
    const std::int64_t shown = std::min(done, total);
    // In double: no product of two counts overflows.
    const double fraction = total > 0 ? static_cast<double>(shown) / static_cast<double>(total) : 1.0;
    const int percent = static_cast<int>(fraction * 100);
    std::string eta = "ETA --:--";
    if (shown >= total)
        eta = "in " + formatDuration(seconds);
    else if (rate > 0)
        eta = "ETA " + formatDuration(static_cast<double>(total - shown) / rate);
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", percent);
    const std::string tail =
        std::string(pct) + "  " + std::to_string(shown) + "/" + std::to_string(total) + "  " + rateText + "  " + eta;
    const int room = width - static_cast<int>(label.size() + tail.size()) - 5;  // " [" "] " and a space
    const int barWidth = std::clamp(room, 0, 40);
    std::string line = label;
    if (barWidth >= 10) {
        const int filled = static_cast<int>(fraction * barWidth);
        line += " [" + std::string(filled, '#') + std::string(barWidth - filled, '.') + "] ";
    } else {
        line += "  ";
    }
    line += tail;
    return line.size() > static_cast<std::size_t>(width) ? line.substr(0, width) : line;
}

}  // namespace sm::app
