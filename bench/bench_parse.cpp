// Parser benchmark: 20,000 generated mails (70 % small text/plain with
// encoded subjects, 20 % text + HTML alternatives, 10 % with a 100 KB - 2 MB
// base64 attachment), each parsed with full decoding (headers, charsets,
// bodies, HTML to text, attachment names and decoded sizes). Mails are
// generated one at a time (deterministic seed) so that memory shows the
// parser's own peak; only parseMail is timed.
// Prints messages/s, MB/s, peak RSS (getrusage ru_maxrss) and the largest mail.
#include "mail/mime_parser.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

namespace {

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64Lines(size_t bytes, std::mt19937& rng) {
    std::string out;
    size_t chars = (bytes + 2) / 3 * 4;
    out.reserve(chars + chars / 76 * 2 + 4);
    for (size_t i = 0; i < chars; ++i) {
        out.push_back(kB64[rng() & 63]);
        if (i % 76 == 75) out += "\r\n";
    }
    return out + "\r\n";
}

std::string makeMail(int i, std::mt19937& rng) {
    std::string h = "From: =?UTF-8?Q?Nguy=E1=BB=85n_V=C4=83n_" + std::to_string(i) + "?= <user" + std::to_string(i) +
                    "@example.vn>\r\nTo: Support <support@example.com>\r\n"
                    "Subject: =?UTF-8?B?WcOqdSBj4bqndSBo4buXIHRy4bujIGvhu7kgdGh14bqtdA==?= =?UTF-8?Q?_s=E1=BB=91_" +
                    std::to_string(i) + "?=\r\nDate: Mon, 2 Mar 2026 10:00:00 +0700\r\nMessage-ID: <" +
                    std::to_string(i) + "@example.vn>\r\nMIME-Version: 1.0\r\n";
    std::string text =
        "Access ID: 0230242323\r\nContract ID: 7788-1122\r\nProduct: SQL Server\r\nSeverity: B\r\n"
        "Description: M=C3=A1y ch=E1=BB=A7 ch=E1=BA=A1y ch=E1=BA=ADm t=E1=BB=AB h=C3=B4m qua, xin h=E1=BB=97 tr=E1=BB=A3.=\r\n"
        " The server is slow since yesterday.\r\n";
    int kind = i % 10;
    if (kind < 7) {
        return h + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
               text;
    }
    if (kind < 9) {
        return h + "Content-Type: multipart/alternative; boundary=\"alt-" + std::to_string(i) +
               "\"\r\n\r\n--alt-" + std::to_string(i) +
               "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
               text + "--alt-" + std::to_string(i) +
               "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
               "<html><body><p><b>Access ID:</b> 0230242323</p><p>Contract ID: 7788-1122</p><p>M=C3=A1y "
               "ch=E1=BB=A7 &amp; d=E1=BB=AF li=E1=BB=87u</p><script>x()</script></body></html>\r\n--alt-" +
               std::to_string(i) + "--\r\n";
    }
    size_t size = 100 * 1024 + rng() % (1900 * 1024 + 1);
    return h + "Content-Type: multipart/mixed; boundary=\"mix-" + std::to_string(i) + "\"\r\n\r\n--mix-" +
           std::to_string(i) + "\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + text + "--mix-" + std::to_string(i) +
           "\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?QsOhbyBjw6Fv?=.pdf\"\r\n"
           "Content-Disposition: attachment; filename*=UTF-8''B%C3%A1o%20c%C3%A1o.pdf\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + base64Lines(size, rng) + "--mix-" + std::to_string(i) +
           "--\r\n";
}

}  // namespace

int main(int argc, char** argv) {
    int count = argc > 1 ? std::atoi(argv[1]) : 20000;
    std::mt19937 rng(42);
    double seconds = 0;
    size_t bytes = 0, largest = 0, attachmentBytes = 0, textBytes = 0;
    for (int i = 0; i < count; ++i) {
        std::string raw = makeMail(i, rng);
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
