#include "domain/authentication.h"

#include <optional>

#include <Poco/String.h>
#include <Poco/StringTokenizer.h>

namespace sm::domain {
namespace {

// Drops RFC 5322 comments "(...)" so "spf=pass (sender SPF authorized)" reads cleanly.
std::string withoutComments(const std::string& s) {
    std::string out;
    int depth = 0;
    for (char c : s) {
        if (c == '(') ++depth;
        else if (c == ')' && depth > 0) --depth;
        else if (depth == 0) out += c;
    }
    return out;
}

std::string domainOf(std::string v) {
    auto at = v.rfind('@');
    if (at != std::string::npos) v = v.substr(at + 1);
    return Poco::toLower(Poco::trim(v));
}

}  // namespace

bool domainsAligned(const std::string& a, const std::string& b) {
    std::string x = Poco::toLower(a), y = Poco::toLower(b);
    if (x.empty() || y.empty()) return false;
    if (x == y) return true;
    auto suffix = [](const std::string& longer, const std::string& shorter) {
        return longer.size() > shorter.size() + 1 &&
               longer.compare(longer.size() - shorter.size(), shorter.size(), shorter) == 0 &&
               longer[longer.size() - shorter.size() - 1] == '.' && shorter.find('.') != std::string::npos;
    };
    return suffix(x, y) || suffix(y, x);
}

namespace {

/// The method results ("dmarc=pass header.from=x", split into words) of the first
/// Authentication-Results header our server wrote (any server when authservId is empty):
/// only that header speaks for it; nullopt when there is none.
std::optional<std::vector<std::vector<std::string>>> ourResults(const std::vector<std::string>& headers,
                                                               const std::string& authservId) {
    for (const auto& raw : headers) {
        std::string h = withoutComments(raw);
        Poco::StringTokenizer parts(h, ";", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        if (parts.count() == 0) continue;
        std::string id = Poco::toLower(Poco::trim(parts[0]));
        auto sp = id.find_first_of(" \t");
        if (sp != std::string::npos) id = id.substr(0, sp);
        if (!authservId.empty() && id != Poco::toLower(authservId)) continue;
        std::vector<std::vector<std::string>> results;
        for (std::size_t i = 1; i < parts.count(); ++i) {
            Poco::StringTokenizer words(parts[i], " \t", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
            std::vector<std::string> lowered;
            for (const auto& w : words) lowered.push_back(Poco::toLower(w));
            if (!lowered.empty()) results.push_back(std::move(lowered));
        }
        return results;
    }
    return std::nullopt;
}

}  // namespace

bool senderAuthenticated(const std::vector<std::string>& headers, const std::string& fromDomain,
                         const std::string& authservId) {
    auto results = ourResults(headers, authservId);
    if (!results) return false;
    for (const auto& words : *results) {
        const std::string& method = words[0];
        std::string identity;
        for (std::size_t w = 1; w < words.size(); ++w)
            for (const char* key : {"header.from=", "smtp.mailfrom=", "header.d=", "header.i="})
                if (words[w].rfind(key, 0) == 0) identity = domainOf(words[w].substr(std::string(key).size()));
        if (method == "dmarc=pass") return true;
        if ((method == "spf=pass" || method == "dkim=pass") && domainsAligned(identity, fromDomain)) return true;
    }
    return false;
}

bool dmarcFailed(const std::vector<std::string>& headers, const std::string& authservId) {
    auto results = ourResults(headers, authservId);
    if (!results) return false;
    for (const auto& words : *results)
        if (words[0] == "dmarc=fail") return true;
    return false;
}

}  // namespace sm::domain
