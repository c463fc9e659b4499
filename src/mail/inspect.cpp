// JSON rendering of a parsed mail with Poco::JSON.
#include "mail/inspect.h"

#include "domain/ids.h"
#include "mail/charset.h"
#include "mail/classify.h"
#include "mail/request_fields.h"
#include "mail/unicode_text.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>

#include <cctype>
#include <sstream>
#include <utility>
#include <vector>

namespace sm::mail {
namespace {

std::string utf8(const std::string& s) { return isValidUtf8(s) ? s : repairUtf8(s); }

Poco::JSON::Object::Ptr address(const Address& a) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("name", utf8(a.name));
    o->set("address", utf8(a.email));
    return o;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

/// Every stand-alone run of ten digits (an Access ID's shape) and every Contract ID
/// (C- and ten letters of its alphabet, any case) in a person's text, masked.
std::string maskIdShapes(std::string text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (i > 0 && isWordChar(text[i - 1])) continue;
        std::size_t n = 0;
        while (i + n < text.size() && isDigit(text[i + n])) ++n;
        if (n == 10 && (i + n == text.size() || !isWordChar(text[i + n]))) {
            const std::string masked = domain::maskAccessId(text.substr(i, 10));
            text.replace(i, 10, masked);
            i += masked.size() - 1;
            continue;
        }
        if (i + 12 <= text.size() && (i + 12 == text.size() || !isWordChar(text[i + 12]))) {
            const std::string candidate = domain::normalizeContractId(text.substr(i, 12));
            if (domain::isValidContractId(candidate)) {
                const std::string masked = domain::maskContractId(candidate);
                text.replace(i, 12, masked);
                i += masked.size() - 1;
            }
        }
    }
    return text;
}

}  // namespace

std::string inspectJson(const ParsedMail& m, bool showIds) {
    // The IDs a request carries are bearer secrets: masked in the text, the subject and
    // the fields (as typed, and as the request handler reads them) unless asked for.
    const auto fieldsFound = extractRequestFields(m.text);
    std::vector<std::pair<std::string, std::string>> typed;  // as typed ("0037 123 456") → masked
    for (const auto& [k, v] : fieldsFound) {
        if (k == "access_id" && v.size() >= 4) typed.emplace_back(v, domain::maskAccessId(normalizeTypedDigits(v)));
        if (k == "contract_id" && v.size() >= 4) typed.emplace_back(v, domain::maskContractId(domain::normalizeContractId(v)));
    }
    const auto hide = [&](std::string s) {
        if (showIds) return s;
        for (const auto& [clear, masked] : typed)
            for (auto at = s.find(clear); at != std::string::npos; at = s.find(clear, at + masked.size()))
                s.replace(at, clear.size(), masked);
        return maskIdShapes(s);
    };
    Poco::JSON::Object root(Poco::JSON_PRESERVE_KEY_ORDER);
    root.set("from", address(m.from));
    Poco::JSON::Array::Ptr to = new Poco::JSON::Array;
    for (const auto& a : m.to) to->add(address(a));
    root.set("to", to);
    root.set("subject", utf8(hide(m.subject)));
    root.set("date", utf8(m.date));
    root.set("message_id", utf8(m.messageId));
    root.set("in_reply_to", utf8(m.inReplyTo));
    Poco::JSON::Array::Ptr refs = new Poco::JSON::Array;
    for (const auto& r : m.references) refs->add(utf8(r));
    root.set("references", refs);
    root.set("text", utf8(hide(m.text)));
    Poco::JSON::Array::Ptr atts = new Poco::JSON::Array;
    for (const auto& a : m.attachments) {
        Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        o->set("name", utf8(a.name));
        o->set("type", utf8(a.contentType));
        o->set("size", static_cast<Poco::UInt64>(a.size));
        atts->add(o);
    }
    root.set("attachments", atts);
    BounceInfo bounce;
    Classification c = classifyHygiene(m, &bounce);
    root.set("classification", toString(c));
    if (c == Classification::Bounce) {
        Poco::JSON::Object::Ptr b = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        Poco::JSON::Array::Ptr rcpts = new Poco::JSON::Array;
        for (const auto& r : bounce.recipients) rcpts->add(utf8(r));
        b->set("recipients", rcpts);
        b->set("permanent", bounce.permanent);
        b->set("returned_message_id", utf8(m.returnedMessageId));
        root.set("bounce", b);
    } else {
        root.set("bounce", Poco::Dynamic::Var());
    }
    Poco::JSON::Object::Ptr fields = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [k, v] : fieldsFound) fields->set(k, utf8(k == "access_id" || k == "contract_id" ? hide(v) : v));
    root.set("fields", fields);
    Poco::JSON::Array::Ptr defects = new Poco::JSON::Array;
    for (const auto& d : m.defects) defects->add(utf8(d));
    root.set("defects", defects);
    std::ostringstream os;
    root.stringify(os);
    return os.str();
}

}  // namespace sm::mail
