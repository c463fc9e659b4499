// Fuzz target: configuration loading (the properties file with its file:line errors). Any
// problem must come out as ConfigError; any other exception or a crash is a finding.
#include "app/config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string file = sm::fuzz::writeScratch("supportmail.properties", sm::fuzz::asView(data, size));
    try {
        sm::app::loadSettings(file);
    } catch (const sm::app::ConfigError&) {
    }
    return 0;
}
