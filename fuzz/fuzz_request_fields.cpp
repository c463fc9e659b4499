// Fuzz target: request field extraction ("Label: value" lines in English or Vietnamese) from
// a decoded mail text, as `process` runs it on every request mail's text and HTML.
#include "fuzz_support.h"
#include "mail/request_fields.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sm::mail::extractRequestFields(sm::fuzz::asView(data, size));
    return 0;
}
