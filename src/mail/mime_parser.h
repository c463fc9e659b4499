// Inbound mail parsing: raw RFC 5322 bytes -> ParsedMail (decoded UTF-8).
//
// mimetic builds the entity tree from an iterator pair over the caller's
// buffer (never from a stream). Before that, a linear pre-scan bounds what
// reaches mimetic, whose costs explode on hostile input (quadratic in one
// header field's length, recursion per nesting level, memory per part):
//  - mail larger than maxSize: MailRejected (quarantine it);
//  - a header field longer than maxHeaderField, or a header block longer
//    than maxHeaderBlock: the excess is dropped, with a defect;
//  - nesting deeper than maxDepth or more than maxParts parts: the mail is
//    cut where the limit is crossed (what comes before is parsed), with a
//    defect. With ParseLimits::rejectHostile these throw MailRejected instead.
// Everything else that is wrong (missing boundaries, bare CR or LF lines,
// unknown charsets, broken encodings, 8-bit headers) degrades to a defect
// string in ParsedMail::defects; parseMail never throws anything else.
// Thread-safe: no shared mutable state.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mail/parsed_mail.h"

namespace sm::mail {

struct ParseLimits {
    size_t maxSize = 64u << 20;          ///< bytes; larger mail is rejected
    size_t maxHeaderField = 64u << 10;   ///< one unfolded header field
    size_t maxHeaderBlock = 1u << 20;    ///< one header block (top level or a part)
    int maxDepth = 50;                   ///< multipart / message nesting levels
    size_t maxParts = 5000;              ///< MIME entities in the whole mail
    bool rejectHostile = false;          ///< throw MailRejected instead of cutting
};

/// A mail that must be quarantined; what() is the reason.
class MailRejected : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

ParsedMail parseMail(std::string_view raw, const ParseLimits& limits = {});

/// parseMail(raw).messageId, from the top header alone (the body is not walked and
/// no other field is decoded): what `fetch` stores for every message. Throws
/// MailRejected as parseMail does.
std::string headerMessageId(std::string_view raw, const ParseLimits& limits = {});

/// False for input that is not mail at all (binary data, no header fields at
/// the top): `supportmail inspect` exits 65 for it.
bool looksLikeMail(std::string_view raw);

/// Address list parsing ("Name" <a@b>, a@b (Name), groups); names decoded.
std::vector<Address> parseAddressList(std::string_view raw);

}  // namespace sm::mail
