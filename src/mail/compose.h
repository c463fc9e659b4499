// The composer: turns an OutgoingMessage into the RFC 5322 / MIME bytes a
// transport sends (CRLF line endings, 7-bit clean, lines <= 998 octets).
//
// Inputs are trusted for meaning but not for form: CR, LF and every other
// control character in any header text (subject, display names, extra header
// values) is replaced by a space, so no caller-supplied string can start a new
// header line. Malformed addresses and header names are refused with
// std::invalid_argument; they are programming or data errors, not something to
// paper over. Nothing here does I/O except reading the kernel's CSPRNG.
#pragma once

#include <string>
#include <string_view>

#include "mail/message.h"

namespace sm::mail {

/// Builds the whole mail: From, To, Cc (if any), Subject, Date, Message-ID
/// (message.messageId, else a fresh one; the MIME boundary is derived from it, so
/// the same message with the same Message-ID composes to the same bytes),
/// In-Reply-To / References (when given and well formed; malformed ids from
/// inbound mail are dropped, not fatal), Auto-Submitted (when non-empty),
/// extraHeaders, MIME-Version, then a text/plain part or a multipart/alternative
/// of text/plain + text/html (UTF-8, quoted-printable).
/// Throws std::invalid_argument for an invalid From/To/Cc address, an empty To,
/// a bad messageIdDomain, or an extra header that is malformed or duplicates a
/// header the composer writes itself (From, To, Cc, Bcc, Subject, Date, ...).
ComposedMail compose(const OutgoingMessage& message);

/// A fresh "<time.random@domain>" id: 128 bits from getrandom(2) plus the time
/// in microseconds. Throws std::invalid_argument for a domain that is not a
/// plain host name (letters, digits, '.', '-'), std::runtime_error if the
/// CSPRNG fails.
std::string newMessageId(const std::string& domain);

/// Unstructured header text (Subject, extra header values): control characters
/// become spaces, whitespace runs collapse, and when the text is not plain
/// printable ASCII (or contains "=?", or a word too long to fold) the part from
/// the first to the last such word becomes RFC 2047 encoded-words ("=?UTF-8?Q?"
/// or "?B?", whichever is shorter), each <= 75 characters, split only on UTF-8
/// character boundaries. Otherwise the (cleaned) text is returned unchanged.
/// Invalid UTF-8 is replaced by U+FFFD. The result has no CR or LF; fold it with
/// the header it goes into.
std::string encodeHeaderText(const std::string& utf8);

/// "Name <addr>", "\"Name, Jr.\" <addr>", "=?UTF-8?...?= <addr>" or "addr".
/// Throws std::invalid_argument when the address is not a plausible ASCII
/// addr-spec: empty, longer than 254, without exactly one '@' (with text on
/// both sides), or containing controls, spaces, non-ASCII or any of <>,;:"()[]\.
std::string formatAddress(const Address& address);

/// Throws std::invalid_argument unless `email` passes the check formatAddress
/// makes. Exposed for callers that build SMTP envelopes.
void validateEmail(const std::string& email);

/// Quoted-printable body encoding (RFC 2045 6.7) with CRLF everywhere: input
/// line breaks (LF, CRLF or CR) become CRLF, encoded lines are <= 76 chars,
/// soft breaks are "=\r\n", trailing blanks and a leading '.' are encoded. Text
/// that does not end with a line break ends with a soft break, so decoding gives
/// back exactly the input (with CRLF line breaks).
std::string encodeQuotedPrintable(std::string_view text);

}  // namespace sm::mail
