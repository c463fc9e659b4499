// Test-only IMAP reader (libcurl, plain IMAP on loopback) for the throw-away
// Dovecot started by tests/scripts/start-mail-servers.sh.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace smtest {

struct MailServerEnv {
    std::string host;
    int imapPort = 0, imapsPort = 0, smtpPort = 0, smtpsPort = 0;
    std::string caCert;
    std::string stateDir;
};

/// Reads the file named by $MAIL_ENV_FILE (mail-servers.env: KEY=value lines).
/// Throws std::runtime_error with a clear message if unset, missing or incomplete.
MailServerEnv loadMailServerEnv();

/// All messages' raw bytes in UID order (UID SEARCH ALL, then INBOX;UID=n on one
/// reused handle; note this sets \Seen). Throws std::runtime_error on IMAP errors.
std::vector<std::string> fetchAll(const MailServerEnv& env, const std::string& user,
                                  const std::string& password, const std::string& mailbox = "INBOX");

/// Polls every 50 ms until at least `count` messages are in INBOX or timeoutMs has
/// passed; returns all messages there are at that point (maybe fewer than count).
std::vector<std::string> waitForMessages(const MailServerEnv& env, const std::string& user,
                                         const std::string& password, std::size_t count,
                                         int timeoutMs);

/// Empties INBOX (UID STORE +FLAGS.SILENT (\Deleted), UID EXPUNGE, in batches).
void deleteAll(const MailServerEnv& env, const std::string& user, const std::string& password);

}  // namespace smtest
