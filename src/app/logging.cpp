#include "app/logging.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <set>

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/FileChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/RegularExpression.h>
#include <Poco/String.h>
#include <Poco/SyslogChannel.h>
#include <Poco/UTF8String.h>

#include "app/config.h"
#include "app/progress.h"
#include "domain/ids.h"

namespace sm::app {
namespace {

struct RunState {
    std::mutex mutex;
    std::int64_t id = 0;
    std::string job;
    std::set<std::string> secrets;
};

RunState& state() {
    static RunState s;
    return s;
}

const char* levelName(Poco::Message::Priority p) {
    static const char* names[] = {"", "fatal", "critical", "error", "warning", "notice", "information", "debug", "trace"};
    const int i = static_cast<int>(p);
    return i >= 1 && i <= 8 ? names[i] : "notice";
}

/// stderr, sharing the terminal with the progress bar.
class StderrChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex_);
        TerminalProgress::clearLine();
        std::cerr << msg.getText() << '\n' << std::flush;
    }

private:
    std::mutex mutex_;
};

/// The one channel the loggers ever hold. Reconfiguring (SIGHUP in serve) swaps
/// what is inside it under a lock instead of giving the loggers a new channel:
/// POCO 1.11's Logger::log reads its channel pointer without a lock, so swapping
/// that while another thread logs could use a channel already freed.
class SwitchableChannel : public Poco::Channel {
public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (inner_) inner_->log(msg);
    }
    void set(Poco::AutoPtr<Poco::Channel> inner) {
        Poco::AutoPtr<Poco::Channel> old;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            old = inner_;
            inner_ = std::move(inner);
        }
        // old is released here, after no log() can still be using it.
    }

private:
    std::mutex mutex_;
    Poco::AutoPtr<Poco::Channel> inner_;
};

SwitchableChannel& rootChannel() {
    static Poco::AutoPtr<SwitchableChannel> channel = [] {
        Poco::AutoPtr<SwitchableChannel> c(new SwitchableChannel);
        Poco::Logger::root().setChannel(c);
        Poco::Logger::setChannel("", c);
        return c;
    }();
    return *channel;
}

}  // namespace

void setCurrentRun(std::int64_t runId, const std::string& job) {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().id = runId;
    state().job = job;
}

void clearCurrentRun() {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().id = 0;
    state().job.clear();
}

std::int64_t currentRunId() {
    std::lock_guard<std::mutex> lock(state().mutex);
    return state().id;
}

void addSecret(const std::string& secret) {
    if (secret.empty()) return;
    std::lock_guard<std::mutex> lock(state().mutex);
    state().secrets.insert(secret);
}

std::string redact(const std::string& text) {
    std::string s = text;
    {
        std::lock_guard<std::mutex> lock(state().mutex);
        for (const auto& secret : state().secrets) Poco::replaceInPlace(s, secret, std::string("[secret]"));
    }
    // An Access ID is ten digits; a Contract ID "C-" and ten letters or digits.
    // Neither is part of a longer word or number.
    static const Poco::RegularExpression ids("(?<![0-9A-Za-z])(?:[0-9]{10}|C-[A-Z0-9]{10})(?![0-9A-Za-z])");
    std::string out;
    std::string::size_type pos = 0;
    Poco::RegularExpression::Match m;
    while (pos < s.size() && ids.match(s, pos, m) > 0 && m.offset != std::string::npos) {
        out.append(s, pos, m.offset - pos);
        const std::string token = s.substr(m.offset, m.length);
        out += token[0] == 'C' ? domain::maskContractId(token) : domain::maskAccessId(token);
        pos = m.offset + m.length;
    }
    if (pos < s.size()) out.append(s, pos, std::string::npos);
    return out;
}

void LogFormatter::format(const Poco::Message& msg, std::string& text) {
    std::int64_t runId;
    std::string job;
    {
        std::lock_guard<std::mutex> lock(state().mutex);
        runId = state().id;
        job = state().job;
    }
    const std::string message = redact(msg.getText());
    const std::string time = Poco::DateTimeFormatter::format(msg.getTime(), "%Y-%m-%dT%H:%M:%S.%iZ");
    const std::string pid = std::to_string(static_cast<long>(::getpid()));
    if (json_) {
        text = "{";
        if (withTime_) text += "\"time\":\"" + time + "\",";
        text += "\"level\":\"" + std::string(levelName(msg.getPriority())) + "\",\"logger\":\"" +
                Poco::UTF8::escape(msg.getSource(), true) + "\",\"pid\":" + pid + ",\"run_id\":" +
                (runId ? std::to_string(runId) : std::string("null")) + ",\"job\":" +
                (job.empty() ? std::string("null") : "\"" + Poco::UTF8::escape(job, true) + "\"") +
                ",\"message\":\"" + Poco::UTF8::escape(message, true) + "\"}";
        return;
    }
    text.clear();
    if (withTime_) text += time + " [" + pid + "] ";
    text += "run=" + (runId ? std::to_string(runId) : std::string("-")) + " " + (job.empty() ? std::string("-") : job) + " ";
    text += std::string(levelName(msg.getPriority())) + " " + msg.getSource() + ": " + message;
}

void configureLogging(const config::LogSettings& s, bool verbose, const std::string& configFile) {
    const bool json = s.format == "json";
    Poco::AutoPtr<Poco::Channel> sink;
    if (s.channel == "file") {
        Poco::AutoPtr<Poco::FileChannel> file(new Poco::FileChannel(s.file));
        if (!s.rotate.empty()) {
            file->setProperty(Poco::FileChannel::PROP_ROTATION, s.rotate);
            file->setProperty(Poco::FileChannel::PROP_ARCHIVE, "timestamp");
            file->setProperty(Poco::FileChannel::PROP_TIMES, "utc");
            if (s.keep > 0) file->setProperty(Poco::FileChannel::PROP_PURGECOUNT, std::to_string(s.keep));
        }
        try {
            file->open();
        } catch (const Poco::Exception& e) {
            throw ConfigError(configFile + ": logging.file: cannot open '" + s.file + "' for writing: " + e.displayText());
        }
        sink = file;
    } else if (s.channel == "syslog") {
        Poco::AutoPtr<Poco::SyslogChannel> sys(new Poco::SyslogChannel(
            s.syslogIdent, Poco::SyslogChannel::SYSLOG_PID, Poco::SyslogChannel::SYSLOG_DAEMON));
        sys->setProperty(Poco::SyslogChannel::PROP_FACILITY, "LOG_" + Poco::toUpper(s.syslogFacility));
        sink = sys;
    } else {
        sink = new StderrChannel;
    }
    Poco::AutoPtr<LogFormatter> formatter(new LogFormatter(json, s.channel != "syslog"));
    Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(formatter, sink));
    rootChannel().set(channel);
    // Loggers created before (Logger::get copies the root's level) follow.
    const int level = Poco::Logger::parseLevel(verbose ? std::string("information") : s.level);
    Poco::Logger::setLevel("", level);
    // POCO's own subsystem chatter ("Uninitializing subsystem ...") stays out of a debug log.
    Poco::Logger::get("Application").setLevel(std::min(level, static_cast<int>(Poco::Message::PRIO_INFORMATION)));
}

void configureDefaultLogging() { configureLogging(config::LogSettings{}, false, ""); }

}  // namespace sm::app
