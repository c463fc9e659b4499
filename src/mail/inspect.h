// `supportmail inspect`: one parsed mail as one JSON object.
//
// Keys: from {name,address}, to [{name,address}], subject, date, message_id,
// in_reply_to, references [], text, attachments [{name,type,size}],
// classification, bounce {recipients,permanent,returned_message_id} or null, fields {},
// defects [].
// Strings are UTF-8 (the parser guarantees valid UTF-8; anything invalid left
// is repaired here), escaped as JSON requires.
#pragma once

#include <string>

#include "mail/parsed_mail.h"

namespace sm::mail {

/// showIds false (the default): Access IDs and Contract IDs are masked wherever a
/// person's words go out (subject, text, the access_id and contract_id fields), and so
/// is any ten-digit number or C- code of the Contract ID alphabet there.
std::string inspectJson(const ParsedMail& mail, bool showIds = false);

}  // namespace sm::mail
