#include "domain/authentication.h"

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

bool senderAuthenticated(const std::vector<std::string>& headers, const std::string& fromDomain,
                         const std::string& authservId) {
    for (const auto& raw : headers) {
        std::string h = withoutComments(raw);
        Poco::StringTokenizer parts(h, ";", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        if (parts.count() == 0) continue;
        std::string id = Poco::toLower(Poco::trim(parts[0]));
        auto sp = id.find_first_of(" \t");
        if (sp != std::string::npos) id = id.substr(0, sp);
        if (!authservId.empty() && id != Poco::toLower(authservId)) continue;
        for (std::size_t i = 1; i < parts.count(); ++i) {
            Poco::StringTokenizer words(parts[i], " \t", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
            if (words.count() == 0) continue;
            std::string method = Poco::toLower(words[0]);
            std::string identity;
            for (std::size_t w = 1; w < words.count(); ++w) {
                std::string kv = Poco::toLower(words[w]);
                for (const char* key : {"header.from=", "smtp.mailfrom=", "header.d=", "header.i="})
                    if (kv.rfind(key, 0) == 0) identity = domainOf(kv.substr(std::string(key).size()));
            }
            if (method == "dmarc=pass") return true;
            if ((method == "spf=pass" || method == "dkim=pass") && domainsAligned(identity, fromDomain)) return true;
        }
        return false;  // only the first matching header speaks for our server
    }
    return false;
}

bool dmarcFailed(const std::vector<std::string>& headers, const std::string& authservId) {
    for (const auto& raw : headers) {
        std::string h = withoutComments(raw);
        Poco::StringTokenizer parts(h, ";", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
        if (parts.count() == 0) continue;
        std::string id = Poco::toLower(Poco::trim(parts[0]));
        auto sp = id.find_first_of(" \t");
        if (sp != std::string::npos) id = id.substr(0, sp);
        if (!authservId.empty() && id != Poco::toLower(authservId)) continue;
        for (std::size_t i = 1; i < parts.count(); ++i) {
            Poco::StringTokenizer words(parts[i], " \t", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
            if (words.count() > 0 && Poco::toLower(words[0]) == "dmarc=fail") return true;
        }
        return false;  // only the first matching header speaks for our server
    }
    return false;
}

}  // namespace sm::domain
