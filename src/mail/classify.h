// Mail hygiene and a first content class for one parsed inbound mail.
//
// Order of decision: bounce (DSN, ARF feedback report, or a mailer-daemon /
// empty-return-path sender with bounce wording), then auto-reply (RFC 3834
// Auto-Submitted, X-Autoreply/X-Autorespond, Precedence: auto_reply,
// X-Auto-Response-Suppress, read receipts), then list / bulk traffic (junk:
// never answered), then a content class by keywords: follow_up (case number or
// In-Reply-To/References; the caller confirms against the database), resend,
// benefits, request (request field labels), else junk.
#pragma once

#include <string>
#include <vector>

#include "mail/parsed_mail.h"

namespace sm::mail {

enum class Classification { Request, FollowUp, Resend, Benefits, Bounce, AutoReply, Junk };

/// "request", "follow_up", "resend", "benefits", "bounce", "auto_reply", "junk".
std::string toString(Classification c);

struct BounceInfo {
    std::vector<std::string> recipients;  ///< failed addresses (lower-case), may be empty
    bool permanent = true;                ///< false for delays / temporary (4.x.x) failures
};

/// `out` (optional) is filled for a bounce only.
Classification classifyHygiene(const ParsedMail& mail, BounceInfo* out = nullptr);

/// The case number in a subject ("SR-2026-000123"), or empty.
std::string findCaseNumber(const std::string& subject);

}  // namespace sm::mail
