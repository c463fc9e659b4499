// Fuzz target: template rendering. The input gives a mail's templates (subject, text, HTML:
// the same bytes), then the values of the data they are rendered with, as the jobs fill it
// (names, IDs, lists of benefits). A bad template must come out as TemplateError; anything
// else is a finding.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.h"
#include "mail/templates.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    // The template first: a seed that is a plain template file stays one.
    std::string tmpl = in.ConsumeRandomLengthString(size);
    sm::mail::TemplateData values;
    for (const char* key : {"name", "partner", "case_number", "display_name"})
        values.set(key, in.ConsumeRandomLengthString(64));
    sm::mail::TemplateData list{sm::mail::TemplateData::type::list};
    for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
        sm::mail::TemplateData item;
        item.set("benefit", in.ConsumeRandomLengthString(32));
        list.push_back(item);
    }
    values.set("benefits", list);
    values.set("renewal", in.ConsumeBool());
    for (const char* part : {"en.subject.mustache", "en.txt.mustache", "en.html.mustache"})
        sm::fuzz::writeScratch(std::string("templates/fuzz/") + part, tmpl);
    // A new set each time: TemplateSet caches what it parsed.
    sm::mail::TemplateSet templates(sm::fuzz::scratchDir() + "/templates");
    try {
        templates.render("fuzz", "vi", values);
    } catch (const sm::mail::TemplateError&) {
    }
    return 0;
}
