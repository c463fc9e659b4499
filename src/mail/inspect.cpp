// JSON rendering of a parsed mail with Poco::JSON.
#include "mail/inspect.h"

#include "mail/charset.h"
#include "mail/classify.h"
#include "mail/request_fields.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>

#include <sstream>

namespace sm::mail {
namespace {

std::string utf8(const std::string& s) { return isValidUtf8(s) ? s : repairUtf8(s); }

Poco::JSON::Object::Ptr address(const Address& a) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("name", utf8(a.name));
    o->set("address", utf8(a.email));
    return o;
}

}  // namespace

std::string inspectJson(const ParsedMail& m) {
    Poco::JSON::Object root(Poco::JSON_PRESERVE_KEY_ORDER);
    root.set("from", address(m.from));
    Poco::JSON::Array::Ptr to = new Poco::JSON::Array;
    for (const auto& a : m.to) to->add(address(a));
    root.set("to", to);
    root.set("subject", utf8(m.subject));
    root.set("date", utf8(m.date));
    root.set("message_id", utf8(m.messageId));
    root.set("in_reply_to", utf8(m.inReplyTo));
    Poco::JSON::Array::Ptr refs = new Poco::JSON::Array;
    for (const auto& r : m.references) refs->add(utf8(r));
    root.set("references", refs);
    root.set("text", utf8(m.text));
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
        root.set("bounce", b);
    } else {
        root.set("bounce", Poco::Dynamic::Var());
    }
    Poco::JSON::Object::Ptr fields = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [k, v] : extractRequestFields(m.text)) fields->set(k, utf8(v));
    root.set("fields", fields);
    Poco::JSON::Array::Ptr defects = new Poco::JSON::Array;
    for (const auto& d : m.defects) defects->add(utf8(d));
    root.set("defects", defects);
    std::ostringstream os;
    root.stringify(os);
    return os.str();
}

}  // namespace sm::mail
