// Parser benchmark: 20,000 generated mails (bench_mails.h), each parsed with full
// decoding (headers, charsets, bodies, HTML to text, attachment names and decoded
// sizes). Mails are generated one at a time (deterministic seed) so that memory
// shows the parser's own peak; only parseMail is timed. bench_parse_gmime parses
// the same bytes with GMime for comparison.
// Usage: bench_parse [N] [text]  ("text": no attachments, to compare the header and
// text work alone). Prints messages/s, MB/s, peak RSS (getrusage ru_maxrss) and the largest mail.
#include "mail/mime_parser.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "bench_mails.h"

using benchmail::makeMail;

int main(int argc, char** argv) {
    int count = argc > 1 ? std::atoi(argv[1]) : 20000;
    const bool textOnly = argc > 2 && std::string(argv[2]) == "text";  // no attachments
    std::mt19937 rng(42);
    double seconds = 0;
    size_t bytes = 0, largest = 0, attachmentBytes = 0, textBytes = 0;
    for (int i = 0; i < count; ++i) {
        std::string raw = makeMail(i, rng, textOnly);
        largest = std::max(largest, raw.size());
        bytes += raw.size();
        auto t0 = std::chrono::steady_clock::now();
        sm::mail::ParsedMail m = sm::mail::parseMail(raw);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        textBytes += m.text.size();
        for (const auto& a : m.attachments) attachmentBytes += a.size;
        if (m.subject.empty() || m.text.empty()) {
            std::fprintf(stderr, "mail %d: parse lost its content\n", i);
            return 1;
        }
    }
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    double mb = static_cast<double>(bytes) / 1e6;
    std::printf("parsed %d mails, %.1f MB in %.3f s: %.0f msgs/s, %.1f MB/s\n", count, mb, seconds, count / seconds,
                mb / seconds);
    std::printf("decoded: %.1f MB text, %.1f MB attachments\n", textBytes / 1e6, attachmentBytes / 1e6);
    std::printf("peak RSS %.1f MB; largest mail %.1f MB (RSS includes the generator's copy)\n",
                ru.ru_maxrss / 1024.0, largest / 1e6);
    return 0;
}
