// RFC 2047 encoded words in header values ("=?charset?B|Q?text?=").
//
// Adjacent encoded words are joined without the whitespace between them (also
// across folds); consecutive words in the same charset are decoded as one byte
// string before charset conversion, so a multibyte character split across two
// words comes out whole. A word with an unknown charset or a broken encoding is
// kept raw and reported as a defect. Raw 8-bit text outside encoded words is
// read as undeclared 8-bit (valid UTF-8 kept, dense GB2312 pairs as GB18030,
// else windows-1252 for the bytes outside valid UTF-8 sequences). The result
// is always valid UTF-8.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sm::mail {

/// `rawCharset`: charset for raw 8-bit text outside encoded words that is not
/// valid UTF-8 (usually the charset of the body); empty, ISO-8859-1 or
/// windows-1252 = undeclared 8-bit (see undeclaredToUtf8).
std::string decodeRfc2047(std::string_view value, std::vector<std::string>* defects = nullptr,
                          std::string_view rawCharset = {});

/// Transfer decoders shared with the body code (lenient: invalid input is
/// skipped or kept, never an error).
std::string decodeBase64(std::string_view in);
/// Decoded size without materialising the bytes.
size_t base64DecodedSize(std::string_view in);
/// `header` = true: RFC 2047 Q ('_' is a space, no soft line breaks).
std::string decodeQuotedPrintable(std::string_view in, bool header = false);

}  // namespace sm::mail
