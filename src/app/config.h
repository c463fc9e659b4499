// Configuration: one properties file (config/supportmail.properties documents
// every key with its default). The file is checked line by line before POCO
// loads it: a line that is not `key = value`, an unknown key or a bad value is a
// ConfigError naming the file, the line and the key. Relative paths in the file
// are relative to the file's own directory, so cron and the daemon agree.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include <Poco/AutoPtr.h>
#include <Poco/Util/AbstractConfiguration.h>

#include "domain/plans.h"
#include "domain/regions.h"
#include "mail/message.h"
#include "mail/transport.h"

namespace sm::app {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct DeliverySettings {
    int batch = 200;                   ///< rows read per page
    int retryInitialSeconds = 60;      ///< first back-off
    int retryMaxSeconds = 3600;        ///< back-off ceiling
    int giveUpAfterSeconds = 5 * 86400;  ///< park a mail still failing after this long
};

struct ActivationSettings {
    int batch = 500;          ///< renewals per transaction
    bool regionalRule = true; ///< DOMAIN.md flow 3 same-country rule
    int overdueDays = 28;     ///< the four-week promise
};

struct Settings {
    std::string configFile;   ///< absolute path
    std::string baseDir;      ///< its directory
    std::string databaseUrl;  ///< sqlite:ABSOLUTE_PATH or postgresql:...
    std::string templatesDir;
    mail::Address from;       ///< From of every mail we send
    std::string supportAddress;  ///< where requests go (shown in mails)
    std::string adminAddress;    ///< administrators' address
    std::string messageIdDomain;
    mail::TransportSettings transport;
    DeliverySettings delivery;
    ActivationSettings activation;
    domain::PlanCatalogue plans;
    domain::RegionTable regions;
    std::string logLevel = "notice";
};

/// Checks and loads FILE. Credentials: the SMTP password comes from the
/// environment variable SUPPORTMAIL_SMTP_PASSWORD or from transport.password_file
/// (which must not be readable by group or others). Throws ConfigError.
Settings loadSettings(const std::string& file);

/// The raw key → (value, line) view of a checked file, for messages and doctor.
struct ConfigLine {
    std::string value;
    int line = 0;
};
std::map<std::string, ConfigLine> checkConfigFile(const std::string& file);

}  // namespace sm::app
