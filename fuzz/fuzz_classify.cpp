// Fuzz target: the classifier (bounce / auto-reply / bulk / content class), the
// list-mail rule and the case number search, on whatever the parser makes of the
// input, as `process` runs them.
#include "domain/requests.h"
#include "fuzz_support.h"
#include "mail/classify.h"
#include "mail/mime_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sm::mail::ParsedMail mail;
    try {
        mail = sm::mail::parseMail(sm::fuzz::asView(data, size));
    } catch (const sm::mail::MailRejected&) {
        return 0;
    }
    sm::mail::BounceInfo bounce;
    sm::mail::classifyHygiene(mail, &bounce);
    sm::mail::classifyHygiene(mail, nullptr);
    sm::mail::isListMail(mail);
    sm::domain::findCaseNumber(mail.subject);
    return 0;
}
