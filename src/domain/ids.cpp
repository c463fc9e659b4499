#include "domain/ids.h"

#include <cctype>
#include <cstdio>

namespace sm::domain {
namespace {
constexpr std::string_view kContractAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
constexpr std::size_t kContractLength = 10;
}  // namespace

bool isValidAccessId(std::string_view s) {
    if (s.size() != 10) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

std::string generateAccessId(RandomSource& random) {
    std::uint64_t v = uniformBelow(random, 10000000000ULL);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%010llu", static_cast<unsigned long long>(v));
    return buf;
}

bool isValidContractId(std::string_view s) {
    if (s.size() != 2 + kContractLength || s.substr(0, 2) != "C-") return false;
    for (char c : s.substr(2))
        if (kContractAlphabet.find(c) == std::string_view::npos) return false;
    return true;
}

std::string generateContractId(RandomSource& random) {
    std::string id = "C-";
    for (std::size_t i = 0; i < kContractLength; ++i)
        id += kContractAlphabet[uniformBelow(random, kContractAlphabet.size())];
    return id;
}

std::string normalizeContractId(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    std::string out(s.substr(b, e - b));
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string maskAccessId(std::string_view accessId) {
    if (!isValidAccessId(accessId)) return std::string(accessId.empty() ? 0 : 10, 'x');
    return std::string(accessId.substr(0, 4)) + "xxxxxx";
}

std::string maskContractId(std::string_view contractId) {
    if (contractId.size() <= 4) return std::string(contractId.size(), 'x');
    return std::string(contractId.substr(0, 4)) + std::string(contractId.size() - 4, 'x');
}

std::string displayName(int year, std::string_view typeCode, std::string_view partnerId,
                        std::string_view accessId) {
    char yy[8];
    std::snprintf(yy, sizeof yy, "%02d", ((year % 100) + 100) % 100);
    std::string out = yy;
    out += ' ';
    out += typeCode;
    out += '-';
    out += partnerId;
    out += "-unk (";
    out += maskAccessId(accessId);
    out += ')';
    return out;
}

}  // namespace sm::domain
