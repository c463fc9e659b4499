// Authentication-Results: DMARC pass, or SPF/DKIM pass aligned with the From domain,
// from our own server's header only.
#include <catch2/catch.hpp>

#include "domain/authentication.h"

using sm::domain::domainsAligned;
using sm::domain::senderAuthenticated;

TEST_CASE("DMARC pass from our server authenticates the sender", "[domain][auth]") {
    CHECK(senderAuthenticated({"mx.example.test; dmarc=pass (p=reject) header.from=contoso.example"},
                              "contoso.example", "mx.example.test"));
    CHECK_FALSE(senderAuthenticated({"mx.example.test; dmarc=fail header.from=contoso.example"}, "contoso.example",
                                    "mx.example.test"));
}

TEST_CASE("SPF or DKIM count only when aligned with the From domain", "[domain][auth]") {
    CHECK(senderAuthenticated({"mx.example.test; spf=pass smtp.mailfrom=bounces@mail.contoso.example"},
                              "contoso.example", ""));
    CHECK(senderAuthenticated({"mx.example.test; dkim=pass header.d=contoso.example"}, "contoso.example", ""));
    CHECK_FALSE(senderAuthenticated({"mx.example.test; spf=pass smtp.mailfrom=evil.example"}, "contoso.example", ""));
    CHECK_FALSE(senderAuthenticated({"mx.example.test; dkim=pass header.d=other.example"}, "contoso.example", ""));
}

TEST_CASE("a forged header from another server does not count", "[domain][auth]") {
    // The topmost header is ours and says fail; a lower one (sender-supplied) says pass.
    std::vector<std::string> headers = {"mx.example.test; dmarc=fail header.from=contoso.example",
                                        "mx.example.test; dmarc=pass header.from=contoso.example"};
    CHECK_FALSE(senderAuthenticated(headers, "contoso.example", "mx.example.test"));
    CHECK_FALSE(senderAuthenticated({"evil.example; dmarc=pass"}, "contoso.example", "mx.example.test"));
    CHECK_FALSE(senderAuthenticated({}, "contoso.example", ""));
}

TEST_CASE("relaxed alignment", "[domain][auth]") {
    CHECK(domainsAligned("mail.contoso.example", "contoso.example"));
    CHECK(domainsAligned("Contoso.Example", "contoso.example"));
    CHECK_FALSE(domainsAligned("notcontoso.example", "contoso.example"));
    CHECK_FALSE(domainsAligned("", "contoso.example"));
}
