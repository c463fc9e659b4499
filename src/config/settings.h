// The settings every job reads: a plain struct of the domain's options, filled by
// app/config.h's loader from the properties file (config/supportmail.properties
// documents every key with its default). It lives below the jobs so that a job
// depends on its options, not on the application that loads them; only the loader
// and its file:line errors are in app/. A Settings is a value: copy it freely; a
// job reads it and never changes it, so one may be read from several threads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "domain/business_hours.h"
#include "domain/plans.h"
#include "domain/regions.h"
#include "domain/requests.h"
#include "mail/inbound_source.h"
#include "mail/message.h"
#include "mail/tls_policy.h"
#include "mail/transport.h"

namespace sm::config {

/// logging.*: where and how the log is written.
struct LogSettings {
    std::string level = "notice";   ///< a POCO level name
    std::string channel = "stderr"; ///< stderr, file or syslog
    std::string format = "plain";   ///< plain or json
    std::string file;               ///< the file's path (channel = file)
    std::string rotate;             ///< POCO FileChannel rotation ("" = none: logrotate's job)
    int keep = 0;                   ///< rotated files kept (0 = all)
    std::string syslogFacility = "daemon";
    std::string syslogIdent = "supportmail";

    bool operator==(const LogSettings& o) const {
        return std::tie(level, channel, format, file, rotate, keep, syslogFacility, syslogIdent) ==
               std::tie(o.level, o.channel, o.format, o.file, o.rotate, o.keep, o.syslogFacility, o.syslogIdent);
    }
};

struct DeliverySettings {
    int batch = 200;                   ///< rows read per page
    int retryInitialSeconds = 60;      ///< first back-off
    int retryMaxSeconds = 3600;        ///< back-off ceiling
    int giveUpAfterSeconds = 5 * 86400;  ///< park a mail still failing after this long
    /// VERP (delivery.bounce_address = bounces@example.com): each mail goes with the
    /// envelope sender bounces+OUTBOX-ID@example.com, so a bounce names the mail it is
    /// about. Empty: the From address, and only the returned Message-ID tells.
    std::string bounceAddress;
    int claimSeconds = 300;            ///< a worker's claim on a page of mail; renewed while it sends
    int connections = 1;               ///< SMTP connections (spool writers) at once, 1..32
};

struct ActivationSettings {
    int batch = 20000;        ///< renewals per transaction
    bool regionalRule = true; ///< DOMAIN.md flow 3 same-country rule
    int overdueDays = 28;     ///< the four-week promise
};

/// One mailbox the fetch job reads (inbound.NAME.*).
struct InboundSettings {
    std::string name;
    std::string url;          ///< imap://host:port/MAILBOX, imaps://..., or maildir:PATH
    bool startTls = false;    ///< set by mail/tls_policy.h's rule: on for any server not on the loopback
    bool verifyPeer = true;
    mail::TlsRule tlsRule = mail::TlsRule::NotNetwork;  ///< what doctor reports
    std::string caFile;
    std::string username;
    std::string password;     ///< SUPPORTMAIL_IMAP_PASSWORD_<NAME>, SUPPORTMAIL_IMAP_PASSWORD or password_file
    std::string moveTo;       ///< folder to move fetched mail to; empty = mark \Seen
    std::string passwordHint; ///< where a missing password is looked for, for the message
};

struct ProcessSettings {
    std::int64_t maxMessageBytes = 25 * 1024 * 1024;  ///< larger mail is rejected, its sender told
    int repliesPerSenderPerHour = 10;                  ///< rate limit of our answers to one address
    int batch = 100;                                   ///< messages read per page
    int resendsPerPartnerPerDay = 3;                   ///< ID resends to one partner per 24 h
    int resendsPerSenderPerDay = 3;                    ///< resend requests answered per sender per 24 h
    /// Resends, Action Pack activations, linking and follow-ups require that the
    /// receiving server's Authentication-Results says DMARC pass (or SPF/DKIM pass
    /// aligned with the From domain).
    bool requireAuthentication = true;  ///< flows 2, 5 (linked), 7 (others), 10 need our MX to vouch for the sender
    std::string authservId;  ///< only trust Authentication-Results from this server (empty: the first header)
};

/// schedule.*: what `supportmail serve` runs when. An interval of 0 and an empty
/// daily time switch the job off.
struct ScheduleSettings {
    int fetchProcessSeconds = 60;  ///< fetch, then process, every N seconds
    int deliverSeconds = 30;       ///< deliver every N seconds
    int activateMinute = 2 * 60 + 15;  ///< daily at this minute of the day (calendar.utc_offset); -1 = off
    int expireMinute = 2 * 60 + 30;    ///< likewise for expire
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
    mail::TlsRule transportTlsRule = mail::TlsRule::NotNetwork;  ///< what doctor reports
    DeliverySettings delivery;
    ActivationSettings activation;
    domain::PlanCatalogue plans;
    domain::RegionTable regions;
    std::vector<InboundSettings> inbound;
    ProcessSettings process;
    domain::ProductCatalogue products;
    domain::BusinessCalendar calendar;
    /// countries.<ISO code>.time_zone: a contact's zone by the contact's country, for due times.
    std::map<std::string, std::string> countryTimeZones;
    domain::SeverityTargets severities;
    LogSettings log;  ///< logging.*
    /// expiry.reminder_days: days before expiry a reminder goes to the primary
    /// contact, each once (DOMAIN.md flow 9); sorted descending, no duplicates.
    std::vector<int> expiryReminderDays = {30, 7};
    ScheduleSettings schedule;
};

/// The IMAP source settings of one imap:// or imaps:// inbound.NAME: its URL, TLS
/// and login, and a download limit of twice process.max_message_bytes (fetch
/// records anything bigger without its body). For fetch and doctor alike.
mail::ImapSettings imapSettings(const Settings& settings, const InboundSettings& in);

}  // namespace sm::config
