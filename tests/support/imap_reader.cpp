#include "support/imap_reader.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace smtest {

namespace {

std::string trimQuotes(std::string v) {
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
        v = v.substr(1, v.size() - 2);
    return v;
}

size_t appendToString(char* data, size_t size, size_t n, void* ud) {
    static_cast<std::string*>(ud)->append(data, size * n);
    return size * n;
}

/// One logged-in IMAP connection (one reused easy handle).
class ImapSession {
public:
    ImapSession(const MailServerEnv& env, const std::string& user, const std::string& password,
                const std::string& mailbox)
        : base_("imap://" + env.host + ":" + std::to_string(env.imapPort) + "/") {
        static std::once_flag once;
        std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        h_ = curl_easy_init();
        if (!h_) throw std::runtime_error("imap_reader: curl_easy_init failed");
        char* esc = curl_easy_escape(h_, mailbox.c_str(), static_cast<int>(mailbox.size()));
        mailboxUrl_ = base_ + (esc ? esc : mailbox);
        curl_free(esc);
        curl_easy_setopt(h_, CURLOPT_USERNAME, user.c_str());
        curl_easy_setopt(h_, CURLOPT_PASSWORD, password.c_str());
        curl_easy_setopt(h_, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(h_, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h_, CURLOPT_ERRORBUFFER, err_);
        curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, &appendToString);
        curl_easy_setopt(h_, CURLOPT_WRITEDATA, &body_);
    }
    ~ImapSession() { curl_easy_cleanup(h_); }
    ImapSession(const ImapSession&) = delete;
    ImapSession& operator=(const ImapSession&) = delete;

    /// A custom command on the selected mailbox; returns the untagged lines.
    std::string command(const std::string& cmd) {
        curl_easy_setopt(h_, CURLOPT_URL, mailboxUrl_.c_str());
        curl_easy_setopt(h_, CURLOPT_CUSTOMREQUEST, cmd.c_str());
        perform(cmd);
        return body_;
    }

    std::vector<unsigned long> searchAll() {
        std::istringstream in(command("UID SEARCH ALL"));
        std::vector<unsigned long> uids;
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream words(line);
            std::string star, search;
            words >> star >> search;
            if (star != "*" || search != "SEARCH") continue;
            unsigned long uid = 0;
            while (words >> uid) uids.push_back(uid);
        }
        return uids;
    }

    std::string fetch(unsigned long uid) {
        const std::string url = mailboxUrl_ + ";UID=" + std::to_string(uid);
        curl_easy_setopt(h_, CURLOPT_URL, url.c_str());
        curl_easy_setopt(h_, CURLOPT_CUSTOMREQUEST, static_cast<char*>(nullptr));
        perform("UID FETCH " + std::to_string(uid));
        return body_;
    }

private:
    void perform(const std::string& what) {
        body_.clear();
        err_[0] = '\0';
        const CURLcode rc = curl_easy_perform(h_);
        if (rc != CURLE_OK)
            throw std::runtime_error("imap_reader: " + what + " on " + mailboxUrl_ + " failed: " +
                                     curl_easy_strerror(rc) + (err_[0] ? std::string(" (") + err_ + ")" : ""));
    }

    std::string base_, mailboxUrl_, body_;
    char err_[CURL_ERROR_SIZE] = {};
    CURL* h_ = nullptr;
};

}  // namespace

MailServerEnv loadMailServerEnv() {
    const char* file = std::getenv("MAIL_ENV_FILE");
    if (!file || !*file)
        throw std::runtime_error(
            "MAIL_ENV_FILE is not set: start tests/scripts/start-mail-servers.sh STATE_DIR and set "
            "MAIL_ENV_FILE=STATE_DIR/mail-servers.env (ctest does both through the MAIL fixture)");
    std::ifstream in(file);
    if (!in)
        throw std::runtime_error(std::string("MAIL_ENV_FILE=") + file +
                                 " cannot be read: are the mail servers running (tests/scripts/start-mail-servers.sh)?");
    std::map<std::string, std::string> kv;
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos || line[0] == '#') continue;
        kv[line.substr(0, eq)] = trimQuotes(line.substr(eq + 1));
    }
    auto need = [&](const char* key) -> const std::string& {
        auto it = kv.find(key);
        if (it == kv.end() || it->second.empty())
            throw std::runtime_error(std::string(file) + ": missing " + key);
        return it->second;
    };
    auto port = [&](const char* key) {
        try {
            return std::stoi(need(key));
        } catch (const std::logic_error&) {
            throw std::runtime_error(std::string(file) + ": " + key + " is not a number");
        }
    };
    MailServerEnv env;
    env.host = need("MAIL_HOST");
    env.imapPort = port("IMAP_PORT");
    env.imapsPort = port("IMAPS_PORT");
    env.smtpPort = port("SMTP_PORT");
    env.smtpsPort = port("SMTPS_PORT");
    env.caCert = need("MAIL_CA_CERT");
    env.stateDir = need("MAIL_STATE");
    return env;
}

std::vector<std::string> fetchAll(const MailServerEnv& env, const std::string& user,
                                  const std::string& password, const std::string& mailbox) {
    ImapSession s(env, user, password, mailbox);
    std::vector<std::string> out;
    for (unsigned long uid : s.searchAll()) out.push_back(s.fetch(uid));
    return out;
}

std::vector<std::string> waitForMessages(const MailServerEnv& env, const std::string& user,
                                         const std::string& password, std::size_t count, int timeoutMs) {
    // A new session (login + SELECT) per poll: a long-lived session polling with
    // UID SEARCH was seen to miss a mail Dovecot's LMTP had already saved, for
    // seconds, when deliveries ran in parallel (maildir index not re-synced).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
        ImapSession s(env, user, password, "INBOX");
        const std::vector<unsigned long> uids = s.searchAll();
        if (uids.size() >= count || std::chrono::steady_clock::now() >= deadline) {
            std::vector<std::string> out;
            for (unsigned long uid : uids) out.push_back(s.fetch(uid));
            return out;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

void deleteAll(const MailServerEnv& env, const std::string& user, const std::string& password) {
    ImapSession s(env, user, password, "INBOX");
    const std::vector<unsigned long> uids = s.searchAll();
    // batches: libcurl 7.88 fails custom commands with many untagged lines (NOTES 16)
    for (std::size_t i = 0; i < uids.size(); i += 100) {
        const std::size_t j = std::min(uids.size(), i + 100) - 1;
        const std::string range = std::to_string(uids[i]) + ":" + std::to_string(uids[j]);
        s.command("UID STORE " + range + " +FLAGS.SILENT (\\Deleted)");
        s.command("UID EXPUNGE " + range);
    }
}

}  // namespace smtest
