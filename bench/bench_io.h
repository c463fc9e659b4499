// What a benchmark's process wrote, for the figures that say what a row or a mail
// costs the disk (bench_activate, bench_ingest).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace benchio {

/// Bytes this process handed to write(2)/pwrite(2) so far (/proc/self/io wchar), in
/// MB; 0 where /proc is not there.
inline double writtenMB() {
    std::FILE* f = std::fopen("/proc/self/io", "r");
    if (!f) return 0;
    char line[128];
    double mb = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "wchar:", 6) == 0) mb = std::atof(line + 6) / 1e6;
    std::fclose(f);
    return mb;
}

}  // namespace benchio
