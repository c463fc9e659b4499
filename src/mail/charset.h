// Charset conversion to UTF-8 for decoded mail text.
//
// Declared charsets go through POCO's TextEncoding (with Poco::Encodings'
// extra tables registered) and, for what POCO lacks (GB18030, Big5, Shift_JIS,
// EUC-*, ISO-2022-JP, UTF-7, KOI8-*...), glibc's iconv. Text without a usable
// charset ("undeclared 8-bit") stays as it is when it is valid UTF-8, is read
// as GB18030 when its 8-bit bytes all pair into GB2312 characters (dense
// Chinese text), and otherwise keeps its valid UTF-8 sequences and reads the
// other bytes as windows-1252 (mixed UTF-8 / Latin-1 text comes out whole).
// Every function returns valid UTF-8: bytes a converter cannot map become U+FFFD.
#pragma once

#include <cstdint>

#include <string>
#include <string_view>

namespace sm::mail {

/// Appends one code point as UTF-8 (POCO's UTF8Encoding); NUL, surrogates and values
/// past U+10FFFF become U+FFFD.
void appendUtf8(std::string& out, std::uint32_t cp);

/// Lower-case, trimmed, unquoted charset name with common aliases folded
/// ("latin1" -> "iso-8859-1", "gb2312" -> "gb18030", "utf8" -> "utf-8").
std::string normalizeCharset(std::string_view name);

/// Converts `in` from `charset` to UTF-8 into `out`. Returns false when the
/// charset is unknown to both POCO and iconv and the text needed it (pure
/// ASCII passes through whatever the label); `out` then holds the
/// undeclared-8-bit fallback conversion. An empty charset counts as
/// undeclared. Mislabelled text is repaired: 8-bit "ISO-2022-JP" is read as
/// UTF-8 or Shift_JIS, invalid "UTF-8" bytes as windows-1252; ISO-2022-JP
/// that plain ISO-2022-JP cannot map is retried with the Microsoft extensions
/// (NEC row 13, IBM rows: Windows' CP50221).
bool convertToUtf8(std::string_view in, std::string_view charset, std::string& out);

/// True when convertToUtf8 can convert from this charset (empty = undeclared
/// counts as known).
bool isKnownCharset(std::string_view charset);

/// Undeclared 8-bit text: valid UTF-8 is kept; text whose 8-bit bytes all
/// pair into GB2312 characters (at least two) is GB18030; anything else keeps
/// its valid UTF-8 sequences and reads the remaining bytes as windows-1252.
/// ASCII and valid UTF-8 cost no more than the validity check.
std::string undeclaredToUtf8(std::string_view in);

/// True when every byte >= 0x80 pairs with the next into a GB2312 (EUC-CN)
/// character, lead A1-A9 or B0-F7 and trail A1-FE, there are at least two,
/// and not all of those bytes are C0-FF (the letter block of Latin-1, KOI8-R,
/// windows-1251...).
bool looksLikeGb2312(std::string_view in);

bool isValidUtf8(std::string_view in);

/// Keeps valid UTF-8 sequences and replaces every invalid byte by U+FFFD.
std::string repairUtf8(std::string_view in);

/// True when every byte is below 0x80.
bool isAscii(std::string_view in);

}  // namespace sm::mail
