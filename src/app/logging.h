// The log: POCO logging to stderr, a file or syslog, as plain lines or JSON lines.
//
// Every line carries the id and name of the job run it belongs to (job_runs.id,
// set by JobRunRecord for as long as the run lives; lines outside a run carry
// none) and the process id. Every line passes through redact() first, so an
// Access ID, a Contract ID or a password that slipped into a message never
// reaches the log in clear.
//
// On stderr the lines share the terminal with the progress bar (progress.h): the
// bar is cleared before a line is written and drawn again on its next tick.
#pragma once

#include <cstdint>
#include <string>

#include <Poco/Formatter.h>
#include <Poco/Message.h>

#include "config/settings.h"

namespace sm::app {

/// The job run the current lines belong to (process-wide: one job runs at a time).
/// The frame names the job before it takes the lease (runId 0: not started yet),
/// JobRunRecord sets the id, and the frame clears both once the lease is released.
void setCurrentRun(std::int64_t runId, const std::string& job);
void clearCurrentRun();
std::int64_t currentRunId();

/// A string that must never appear in a log line (a password read from the
/// environment or a file). Empty strings are ignored.
void addSecret(const std::string& secret);

/// text with Access IDs (a run of exactly ten digits), Contract IDs ("C-" and ten
/// characters of their alphabet) and registered secrets masked.
std::string redact(const std::string& text);

/// Formats a message as a plain line ("2026-11-26T03:11:24.123Z [pid] run=42 deliver
/// warning supportmail: text"; "run=-" before the run has started, "run=- -" outside
/// any job) or as one JSON object per line with the keys time,
/// level, logger, pid, run_id (null outside a run), job and message. The time is
/// left out for syslog, which stamps its own.
class LogFormatter : public Poco::Formatter {
public:
    LogFormatter(bool json, bool withTime) : json_(json), withTime_(withTime) {}
    void format(const Poco::Message& msg, std::string& text) override;

private:
    bool json_, withTime_;
};

/// Installs the channel described by settings on the root logger and sets the
/// level (verbose: "information" whatever the settings say). Throws ConfigError
/// for a file that cannot be opened for writing.
void configureLogging(const config::LogSettings& settings, bool verbose, const std::string& configFile);

/// The default before any configuration is read: plain lines on stderr, notice.
void configureDefaultLogging();

}  // namespace sm::app
