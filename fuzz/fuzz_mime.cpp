// Fuzz target: one inbound mail through parsing with complete decoding, as `process` and
// `inspect` take it (headers, RFC 2047/2231, transfer encodings, charsets, HTML to text,
// attachments, DSN parts), then the JSON of `inspect`. parseMail promises to throw nothing
// but MailRejected and to return UTF-8 only; anything else is a finding. So is a
// Message-ID read from the header alone (what `fetch` stores) that differs from the
// whole parse's (what `process` compares it with).
#include <cstdlib>
#include <cstdio>

#include "fuzz_support.h"
#include "mail/charset.h"
#include "mail/inspect.h"
#include "mail/mime_parser.h"

namespace {

void requireUtf8(const std::string& value, const char* what) {
    if (!sm::mail::isValidUtf8(value)) {
        std::fprintf(stderr, "parseMail returned invalid UTF-8 in %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view raw = sm::fuzz::asView(data, size);
    sm::mail::looksLikeMail(raw);
    for (bool rejectHostile : {false, true}) {
        sm::mail::ParseLimits limits;
        limits.rejectHostile = rejectHostile;
        try {
            sm::mail::ParsedMail mail = sm::mail::parseMail(raw, limits);
            requireUtf8(mail.subject, "the subject");
            requireUtf8(mail.text, "the text");
            requireUtf8(mail.from.name, "the From name");
            for (const auto& a : mail.attachments) requireUtf8(a.name, "an attachment name");
            for (const auto& [name, value] : mail.headers)
                if (name == "To" || name == "Cc" || name == "Reply-To") sm::mail::parseAddressList(value);
            sm::mail::inspectJson(mail);
            std::string alone;
            try {
                alone = sm::mail::headerMessageId(raw, limits);
            } catch (const sm::mail::MailRejected& e) {
                std::fprintf(stderr, "headerMessageId rejected what parseMail read: %s\n", e.what());
                std::abort();
            }
            if (alone != mail.messageId) {
                std::fprintf(stderr, "headerMessageId '%s' differs from parseMail's '%s'\n", alone.c_str(),
                             mail.messageId.c_str());
                std::abort();
            }
        } catch (const sm::mail::MailRejected&) {
        }
    }
    return 0;
}
