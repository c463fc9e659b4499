// Whether the receiving server vouched for the sender (RFC 8601
// Authentication-Results): DMARC pass, or SPF or DKIM pass aligned (relaxed)
// with the From domain. Resends, Action Pack activations, linking and follow-ups
// may require it (process.require_authentication).
#pragma once

#include <string>
#include <vector>

namespace sm::domain {

/// headers: the values of every Authentication-Results field, top first.
/// authservId: only a header from this server counts (empty: the topmost, which
/// the receiving server added last and the sender cannot forge past it).
bool senderAuthenticated(const std::vector<std::string>& headers, const std::string& fromDomain,
                         const std::string& authservId);

/// Relaxed alignment: the same domain, or one a subdomain of the other's organisational
/// part as far as we can tell without a public-suffix list (equal or dot-suffix).
bool domainsAligned(const std::string& a, const std::string& b);

/// Our MX (authservId, or the topmost header when empty) says the mail failed DMARC:
/// a forged From we must not answer (the answer would go to the forged address).
bool dmarcFailed(const std::vector<std::string>& headers, const std::string& authservId);

}  // namespace sm::domain
