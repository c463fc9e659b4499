// The checks a support request by mail goes through (DOMAIN.md flow 5), in the
// order DOMAIN.md gives them, each with its own answer:
//   1. the Access ID / Contract ID pair is unknown (hint: every digit, leading zeros too)
//   2. the contract has expired
//   3. no incidents remain
//   4. the product is out of the contract's scope (SCS and ASfP: cloud only)
//   5. the product does not use IDs (hosted services: their own portal; nothing deducted)
// plus what a mail can get wrong before that: missing IDs, unknown product,
// missing or unknown severity. Pure functions over plain values: the store looks
// the pair up, this decides.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/business_hours.h"
#include "domain/model.h"

namespace sm::domain {

struct Product {
    std::string key;
    std::string name;
    std::vector<std::string> aliases;  ///< lower-case alternatives
    Scope scope = Scope::OnPrem;
    bool usesIds = true;
    std::string portal;  ///< where requests for products without IDs go
};

class ProductCatalogue {
public:
    ProductCatalogue() = default;
    explicit ProductCatalogue(std::vector<Product> products);
    /// Case-insensitive match of the name or an alias; a trailing version
    /// ("Windows Server 2019") matches the product whose name is a prefix of it.
    const Product* find(const std::string& text) const;
    const std::vector<Product>& all() const { return products_; }

private:
    std::vector<Product> products_;
    // By product: its aliases and its lower-cased name, made once (find runs for
    // every request).
    std::vector<std::vector<std::string>> names_;
};

enum class RequestOutcome {
    Accepted,
    MissingIds,         ///< no Access ID / Contract ID and no linked contract
    AmbiguousContract,  ///< IDs omitted but the sender is linked to several contracts
    UnknownPair,
    Expired,
    NoIncidentsLeft,
    UnknownProduct,
    OutOfScope,
    ProductWithoutIds,
    MissingSeverity,
};
std::string toString(RequestOutcome);

/// What the store found for the pair given (or linked to the sender).
struct ContractFacts {
    Contract contract;
    int balance = 0;  ///< sum of the ledger
};

struct RequestDecision {
    RequestOutcome outcome = RequestOutcome::Accepted;
    std::string reason;     ///< one sentence for the reply, in English (templates translate by outcome)
    const Product* product = nullptr;
    std::optional<Severity> severity;
};

/// Decides a request. contract: nullopt when the pair is unknown.
/// givenAccessId is what the mail said (for the leading-zeros hint).
RequestDecision decideRequest(const std::optional<ContractFacts>& contract, const std::string& givenAccessId,
                              const std::string& productText, const std::string& severityText,
                              const ProductCatalogue& products, const std::string& today);

/// The refusal's sentence for a product whose requests go to its portal, with or
/// without IDs in the mail (DOMAIN.md: such a product never uses an incident).
std::string productWithoutIdsReason(const Product& product);

/// "SR-2026-000123": year of creation and the incident's sequence number; never
/// reused because the sequence never is.
std::string formatCaseNumber(int year, std::int64_t sequence);
/// Finds a case number in a text (a subject): "SR-2026-000123" or nullopt.
std::optional<std::string> findCaseNumber(const std::string& text);

}  // namespace sm::domain
