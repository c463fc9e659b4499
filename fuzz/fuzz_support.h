// What the fuzz targets share: a scratch directory of their own for the inputs that the
// product reads from a file (CSV, configuration, templates).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sm::fuzz {

/// A directory made once per process (under $TMPDIR or /tmp), removed at exit.
const std::string& scratchDir();

/// Writes `bytes` to scratchDir()/name (replacing it) and returns the file's path.
std::string writeScratch(const std::string& name, std::string_view bytes);

inline std::string_view asView(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace sm::fuzz
