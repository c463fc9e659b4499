// Mail hygiene and a first content class for one parsed inbound mail.
//
// Order of decision: bounce (DSN, ARF feedback report, or a mailer-daemon /
// empty-return-path sender with bounce wording), then auto-reply (RFC 3834
// Auto-Submitted, X-Autoreply/X-Autorespond, Precedence: auto_reply,
// read receipts, automatic-reply subjects; X-Auto-Response-Suppress alone is a
// wish of the sender's client, not a sign of an automatic mail), then list / bulk traffic (junk:
// never answered), then a content class: follow_up (case number or
// In-Reply-To/References; the caller confirms against the database and, when the
// reply is to none of our cases, asks classifyContent()), then by content: request
// (request field labels), resend, benefits (wordings in English and Vietnamese,
// matched on folded text), else no_request (a person's mail we answer with the
// request template).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mail/parsed_mail.h"
#include "mail/request_fields.h"

namespace sm::mail {

/// Junk: list and bulk mail (never answered). NoRequest: a person's mail in which no
/// request, resend, balance query or reply to a case was found (answered).
enum class Classification { Request, FollowUp, Resend, Benefits, Bounce, AutoReply, Junk, NoRequest };

/// "request", "follow_up", "resend", "benefits", "bounce", "auto_reply", "junk", "no_request".
std::string toString(Classification c);

struct BounceInfo {
    std::vector<std::string> recipients;  ///< failed addresses (lower-case), may be empty
    bool permanent = true;                ///< false for delays / temporary (4.x.x) failures
};

/// The text a request is read from (requestText) and the fields read from it
/// (extractRequestFields), read once: classifying a mail and handling its request
/// both need them.
struct RequestReading {
    std::string text;
    RequestFields fields;
};
RequestReading readRequest(const ParsedMail& mail);

/// `out` (optional) is filled for a bounce only. `reading` (optional): the mail's
/// readRequest(), when the caller has it already; read here when needed otherwise.
Classification classifyHygiene(const ParsedMail& mail, BounceInfo* out = nullptr,
                               const RequestReading* reading = nullptr);

/// The class of a mail by its content alone (Request, Resend, Benefits or NoRequest),
/// threading headers ignored: for a reply that matches none of our cases.
Classification classifyContent(const ParsedMail& mail);
Classification classifyContent(const ParsedMail& mail, const RequestReading& reading);

/// The text a request is read from: the body, with the HTML alternative read as text
/// when the body carries no request labels, and a forwarded (attached) message's text
/// when the body carries none either.
std::string requestText(const ParsedMail& mail);

/// A contact asks for an Action Pack benefit to be activated.
bool asksForActivation(const ParsedMail& mail);

/// The mail's text is Vietnamese (its letters with Vietnamese diacritics or its words).
bool looksVietnamese(const std::string& text);

/// Mail from a list or a bulk sender (List-Id, List-Unsubscribe, List-Post, or
/// Precedence bulk, junk or list): never answered. (A case number in a subject is
/// domain::findCaseNumber.)
bool isListMail(const ParsedMail& mail);

/// Every address-shaped run of `text`, in order, as a bounce's text names its
/// recipients: [A-Za-z0-9._%+=#&'/!-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+, each searched
/// from the end of the one before. Linear in the text's length.
std::vector<std::string> addressRuns(std::string_view text);

}  // namespace sm::mail
