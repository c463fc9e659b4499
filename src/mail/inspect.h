// `supportmail inspect`: one parsed mail as one JSON object.
//
// Keys: from {name,address}, to [{name,address}], subject, date, message_id,
// in_reply_to, references [], text, attachments [{name,type,size}],
// classification, bounce {recipients,permanent} or null, fields {}, defects [].
// Strings are UTF-8 (the parser guarantees valid UTF-8; anything invalid left
// is repaired here), escaped as JSON requires.
#pragma once

#include <string>

#include "mail/parsed_mail.h"

namespace sm::mail {

std::string inspectJson(const ParsedMail& mail);

}  // namespace sm::mail
