// Unicode normal forms for matching what people type (utf8proc, Debian's libutf8proc).
//
// Mail arrives in any normal form: Outlook's windows-1258 and text typed on a Mac
// write Vietnamese tone marks as separate combining characters (NFD), UTF-8 mail
// from most other clients precomposes them (NFC). Every text the parser hands on is
// NFC, so a label or a word matches however it was typed; foldForMatch() goes
// further for matching alone (case, diacritics, compatibility forms).
#pragma once

#include <string>
#include <string_view>

namespace sm::mail {

/// NFC of valid UTF-8; invalid input is returned unchanged.
std::string nfc(std::string_view utf8);

/// The matching key of a text: NFKC, case-folded, combining marks stripped, and the
/// Vietnamese đ/Đ (a letter of its own, not a d with a mark) read as d. "Mã hợp đồng",
/// "MA HOP DONG" and "ma hop dong" fold to the same key; full-width digits become ASCII.
std::string foldForMatch(std::string_view utf8);

/// An Access ID as a person typed it: full-width digits, spaces, dashes and dots
/// taken out ("0230 242 323", "0230-242-323", "０２３０２４２３２３" → "0230242323").
/// Anything else in it (letters) leaves the text as typed, so a wrong ID stays wrong.
std::string normalizeTypedDigits(std::string_view typed);

}  // namespace sm::mail
