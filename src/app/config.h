// The configuration file's loader: one properties file (config/supportmail.properties
// documents every key with its default) read into a config::Settings
// (src/config/settings.h, which the jobs include). The file is checked line by line
// before POCO loads it: a line that is not `key = value`, an unknown key or a bad
// value is a ConfigError naming the file, the line and the key. Relative paths in
// the file are relative to the file's own directory, so cron and the daemon agree.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include "config/settings.h"

namespace sm::app {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Checks and loads FILE. Credentials: the SMTP password comes from the
/// environment variable SUPPORTMAIL_SMTP_PASSWORD or from transport.password_file
/// (which must not be readable by group or others). Throws ConfigError. A user
/// without a password is refused by the command that needs it (requirePasswords),
/// so that commands without a server need no secrets.
void requireTransportPassword(const config::Settings& settings);
void requireInboundPasswords(const config::Settings& settings);
config::Settings loadSettings(const std::string& file);

/// The raw key → (value, line) view of a checked file, for messages and doctor.
struct ConfigLine {
    std::string value;
    int line = 0;
};
std::map<std::string, ConfigLine> checkConfigFile(const std::string& file);

}  // namespace sm::app
