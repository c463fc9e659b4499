// HTML to readable plain text for HTML-only mail.
//
// Drops script, style, head and comments; block elements (p, div, br, li,
// tr, h1-h6, table, blockquote, pre, hr ...) become line breaks; a table row
// reads "first cell: second cell other cells" (a label and its value, as typed); entities (named, &#NNN;, &#xHH;) are decoded;
// runs of blanks collapse to one space outside <pre>; at most one blank line
// in a row. Input must be UTF-8; the output is UTF-8 with '\n' line ends.
#pragma once

#include <string>
#include <string_view>

namespace sm::mail {

std::string htmlToText(std::string_view html);

/// Decodes HTML character references in `s` (also used for attribute text).
std::string decodeHtmlEntities(std::string_view s);

/// Charset named by <meta charset=...> or <meta http-equiv content="...charset=...">
/// in the first few KB, or empty.
std::string htmlMetaCharset(std::string_view html);

}  // namespace sm::mail
