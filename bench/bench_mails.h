// The mails both parser benchmarks parse (bench_parse: ours; bench_parse_gmime:
// GMime 3 on the same bytes): 70 % small text/plain with encoded subjects, 20 %
// text + HTML alternatives, 10 % with a 100 KB - 2 MB base64 attachment, generated
// one at a time from a fixed seed.
#pragma once

#include <random>
#include <string>

namespace benchmail {

inline const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline std::string base64Lines(size_t bytes, std::mt19937& rng) {
    std::string out;
    size_t chars = (bytes + 2) / 3 * 4;
    out.reserve(chars + chars / 76 * 2 + 4);
    for (size_t i = 0; i < chars; ++i) {
        out.push_back(kB64[rng() & 63]);
        if (i % 76 == 75) out += "\r\n";
    }
    return out + "\r\n";
}

/// textOnly: no attachments (the 10 % become text + HTML alternatives).
inline std::string makeMail(int i, std::mt19937& rng, bool textOnly = false) {
    std::string h = "From: =?UTF-8?Q?Nguy=E1=BB=85n_V=C4=83n_" + std::to_string(i) + "?= <user" + std::to_string(i) +
                    "@example.vn>\r\nTo: Support <support@example.com>\r\n"
                    "Subject: =?UTF-8?B?WcOqdSBj4bqndSBo4buXIHRy4bujIGvhu7kgdGh14bqtdA==?= =?UTF-8?Q?_s=E1=BB=91_" +
                    std::to_string(i) + "?=\r\nDate: Mon, 2 Mar 2026 10:00:00 +0700\r\nMessage-ID: <" +
                    std::to_string(i) + "@example.vn>\r\nMIME-Version: 1.0\r\n";
    std::string text =
        "Access ID: 0230242323\r\nContract ID: 7788-1122\r\nProduct: SQL Server\r\nSeverity: B\r\n"
        "Description: M=C3=A1y ch=E1=BB=A7 ch=E1=BA=A1y ch=E1=BA=ADm t=E1=BB=AB h=C3=B4m qua, xin h=E1=BB=97 tr=E1=BB=A3.=\r\n"
        " The server is slow since yesterday.\r\n";
    int kind = textOnly ? i % 9 : i % 10;
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

}  // namespace benchmail
