#include "domain/requests.h"

#include <cstdio>

#include <Poco/String.h>

#include "domain/dates.h"
#include "domain/ids.h"

namespace sm::domain {

ProductCatalogue::ProductCatalogue(std::vector<Product> products) : products_(std::move(products)) {
    for (const auto& p : products_) {
        names_.push_back(p.aliases);
        names_.back().push_back(Poco::toLower(p.name));
    }
}

const Product* ProductCatalogue::find(const std::string& text) const {
    std::string t = Poco::toLower(Poco::trim(text));
    if (t.empty()) return nullptr;
    const Product* best = nullptr;
    std::size_t bestLen = 0;
    for (std::size_t i = 0; i < products_.size(); ++i) {
        const Product& p = products_[i];
        for (const auto& n : names_[i]) {
            if (n.empty()) continue;
            bool exact = t == n;
            bool prefix = t.size() > n.size() && t.compare(0, n.size(), n) == 0 &&
                          (t[n.size()] == ' ' || t[n.size()] == '-' || t[n.size()] == ',');
            if ((exact || prefix) && n.size() > bestLen) {
                best = &p;
                bestLen = n.size();
            }
        }
    }
    return best;
}

std::string toString(RequestOutcome o) {
    switch (o) {
        case RequestOutcome::Accepted: return "accepted";
        case RequestOutcome::MissingIds: return "missing_ids";
        case RequestOutcome::AmbiguousContract: return "ambiguous_contract";
        case RequestOutcome::UnknownPair: return "unknown_pair";
        case RequestOutcome::Expired: return "expired";
        case RequestOutcome::NoIncidentsLeft: return "no_incidents_left";
        case RequestOutcome::UnknownProduct: return "unknown_product";
        case RequestOutcome::OutOfScope: return "out_of_scope";
        case RequestOutcome::ProductWithoutIds: return "product_without_ids";
        case RequestOutcome::MissingSeverity: return "missing_severity";
    }
    return "unknown";
}

RequestDecision decideRequest(const std::optional<ContractFacts>& facts, const std::string& givenAccessId,
                              const std::string& productText, const std::string& severityText,
                              const ProductCatalogue& products, const std::string& today) {
    RequestDecision d;
    if (!facts) {
        d.outcome = RequestOutcome::UnknownPair;
        std::string digits;
        for (char c : givenAccessId)
            if (c >= '0' && c <= '9') digits += c;
        d.reason = "The Access ID and Contract ID you gave do not match a support contract.";
        if (!digits.empty() && digits.size() < 10)
            d.reason += " The Access ID has " + std::to_string(digits.size()) +
                        " digits: it has exactly 10; include every digit, leading zeros too (for example 0230242323, not 230242323).";
        else
            d.reason += " Include every digit of both IDs, leading zeros too.";
        return d;
    }
    const Contract& c = facts->contract;
    if (c.state == ContractState::Expired || (!c.expiresOn.empty() && today >= c.expiresOn)) {
        d.outcome = RequestOutcome::Expired;
        d.reason = "The support contract " + c.displayName + " expired on " + c.expiresOn + ".";
        return d;
    }
    if (facts->balance <= 0) {
        d.outcome = RequestOutcome::NoIncidentsLeft;
        d.reason = "The support contract " + c.displayName + " has no incidents left.";
        return d;
    }
    d.product = products.find(productText);
    if (!d.product) {
        d.outcome = RequestOutcome::UnknownProduct;
        d.reason = productText.empty() ? "The request does not say which product it is about (a 'Product:' line)."
                                       : "We do not know the product '" + productText + "'.";
        return d;
    }
    if ((c.scope == Scope::Cloud && d.product->scope != Scope::Cloud) ||
        (c.scope == Scope::OnPrem && d.product->scope == Scope::Cloud)) {
        d.outcome = RequestOutcome::OutOfScope;
        d.reason = "The support contract " + c.displayName + " covers " +
                   (c.scope == Scope::Cloud ? "cloud products only" : "on-premises products only") + "; " +
                   d.product->name + " is " + (d.product->scope == Scope::Cloud ? "a cloud product" : "an on-premises product") +
                   ".";
        return d;
    }
    if (!d.product->usesIds) {
        d.outcome = RequestOutcome::ProductWithoutIds;
        d.reason = productWithoutIdsReason(*d.product);
        return d;
    }
    d.severity = parseSeverity(severityText);
    if (!d.severity) {
        d.outcome = RequestOutcome::MissingSeverity;
        d.reason = severityText.empty() ? "The request does not give a severity (a 'Severity: A, B or C' line)."
                                        : "'" + severityText + "' is not a severity: use A, B or C.";
        return d;
    }
    d.outcome = RequestOutcome::Accepted;
    return d;
}

std::string productWithoutIdsReason(const Product& product) {
    return product.name + " does not use Access IDs and Contract IDs: open the request at " + product.portal +
           ". Nothing was deducted.";
}

std::string formatCaseNumber(int year, std::int64_t sequence) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "SR-%04d-%06lld", year, static_cast<long long>(sequence));
    return buf;
}

std::optional<std::string> findCaseNumber(const std::string& text) {
    // The first "SR-" + 4 digits + "-" + 6 or more digits, read in one pass: std::regex
    // recursed once per digit of the run (a subject of a million digits overflowed).
    const auto digits = [&](std::size_t from) {
        std::size_t to = from;
        while (to < text.size() && text[to] >= '0' && text[to] <= '9') ++to;
        return to - from;
    };
    for (std::size_t at = text.find("SR-"); at != std::string::npos; at = text.find("SR-", at + 1)) {
        const std::size_t year = at + 3;
        if (digits(year) < 4 || year + 4 >= text.size() || text[year + 4] != '-') continue;
        const std::size_t seq = year + 5, n = digits(seq);
        if (n >= 6) return text.substr(at, 3 + 4 + 1 + n);
    }
    return std::nullopt;
}

}  // namespace sm::domain
