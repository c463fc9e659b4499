#include "support/mail_servers.h"

namespace smtest {

std::string MailServers::smtpConfig(const TempDir& dir, const std::string& extra, int smtpPort) const {
    return writeTestConfig(dir,
                           "smtp://127.0.0.1:" + std::to_string(smtpPort ? smtpPort : env.smtpPort) + "/supportmail.test",
                           "transport.starttls = true\ntransport.ca_file = " + env.caCert +
                               "\ntransport.username = support\n" + extra);
}

std::string MailServers::supportInbound() const {
    return "inbound.support.url = imap://127.0.0.1:" + std::to_string(env.imapPort) +
           "/INBOX\n"
           "inbound.support.starttls = true\ninbound.support.ca_file = " + env.caCert +
           "\ninbound.support.username = support\n";
}

std::vector<std::string> MailServers::auth() const { return {"SUPPORTMAIL_SMTP_PASSWORD=support-pw"}; }

std::vector<std::string> MailServers::authSmtpAndImap() const {
    return {"SUPPORTMAIL_SMTP_PASSWORD=support-pw", "SUPPORTMAIL_IMAP_PASSWORD=support-pw"};
}

void MailServers::reset(const std::vector<std::string>& users) const {
    for (const auto& u : users) deleteAll(env, u, u + "-pw");
}

RunResult MailServers::sendToSupport(const std::string& from, const std::string& emlFile) const {
    return runProgram("/usr/bin/swaks", {"--server", "127.0.0.1:" + std::to_string(env.smtpPort), "--auth-user",
                                         "support", "--auth-password", "support-pw", "--from", from, "--to",
                                         "support@example.test", "--data", "@" + emlFile, "--silent", "2"});
}

}  // namespace smtest
