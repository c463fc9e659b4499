#include "support/mail_servers.h"

#include <catch2/catch.hpp>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

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

void MailServers::sendAndWait(const TempDir& dir, const std::string& from, const std::string& raw,
                              std::size_t expectInSupport) {
    const std::string file = dir.file("sent" + std::to_string(++sent_) + ".eml");
    writeFile(file, raw);
    auto r = sendToSupport(from, file);
    INFO(r.out << r.err);
    REQUIRE(r.exitCode == 0);
    REQUIRE(waitForMessages(env, "support", "support-pw", expectInSupport, 10000).size() == expectInSupport);
}

ReceivedMail MailServers::lastReceived(const TempDir& dir, const std::string& user, std::size_t count) const {
    auto mails = waitForMessages(env, user, user + "-pw", count, 10000);
    REQUIRE(mails.size() == count);
    const std::string file = dir.file(user + std::to_string(count) + ".eml");
    writeFile(file, mails.back());
    auto check = checkEml(file);
    INFO(check.out);
    CHECK(check.exitCode == 0);
    auto x = extractEml(file);
    auto obj = Poco::JSON::Parser().parse(x.out).extract<Poco::JSON::Object::Ptr>();
    return {obj->getValue<std::string>("subject"), obj->getValue<std::string>("text"), mails.back()};
}

}  // namespace smtest
