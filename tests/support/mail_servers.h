// The throw-away Postfix + Dovecot of tests/scripts/start-mail-servers.sh as the
// integration tests use them: a configuration that sends through the Postfix
// (and reads the support mailbox), the passwords supportmail logs in with,
// emptying mailboxes and sending a request mail with swaks. Every test user's
// password is its name + "-pw"; supportmail logs in as user support.
#pragma once

#include <string>
#include <vector>

#include "support/imap_reader.h"
#include "support/test_support.h"

namespace smtest {

/// A mail a test user received, as the independent reader (tools/validate_eml.py)
/// sees it.
struct ReceivedMail {
    std::string subject, text, raw;
};

struct MailServers {
    MailServerEnv env = loadMailServerEnv();

    /// writeTestConfig with the transport smtp://127.0.0.1:PORT/supportmail.test
    /// (PORT: smtpPort, or the Postfix's when 0), STARTTLS verified with the
    /// servers' CA and user support; then `extra`.
    std::string smtpConfig(const TempDir& dir, const std::string& extra = "", int smtpPort = 0) const;

    /// Config lines: inbound.support reads INBOX of user support from the
    /// Dovecot over IMAP with STARTTLS.
    std::string supportInbound() const;

    /// The environment with the SMTP password of user support; with the IMAP
    /// password too.
    std::vector<std::string> auth() const;
    std::vector<std::string> authSmtpAndImap() const;

    /// Empties INBOX of each user.
    void reset(const std::vector<std::string>& users) const;

    /// Sends the mail in emlFile from `from` to support@example.test through the
    /// Postfix with swaks (an independent client, as the partner's mail program
    /// would), logged in as user support.
    RunResult sendToSupport(const std::string& from, const std::string& emlFile) const;

    /// Writes raw into dir, sends it with sendToSupport, then waits (10 s) until the
    /// support mailbox holds expectInSupport mails; REQUIREs both.
    void sendAndWait(const TempDir& dir, const std::string& from, const std::string& raw,
                     std::size_t expectInSupport);

    /// Waits (10 s) until the user's mailbox holds count mails (REQUIRE), CHECKs the
    /// last one with the validator and returns what it read of it.
    ReceivedMail lastReceived(const TempDir& dir, const std::string& user, std::size_t count) const;

private:
    int sent_ = 0;
};

}  // namespace smtest
