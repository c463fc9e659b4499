// What the parser makes of one inbound mail: decoded UTF-8 values only, texts in NFC.
// Plain data, no behaviour; produced by parseMail() (mime_parser.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mail/message.h"

namespace sm::mail {

/// A part that is not the chosen body: a file, an attached message, ...
struct Attachment {
    std::string name;          ///< decoded file name (RFC 2231 / 2047 / name=), may be empty
    std::string contentType;   ///< lower-case "type/subtype"
    size_t size = 0;           ///< decoded size in bytes
    bool inlineDisposition = false;
};

/// One per-recipient block of a message/delivery-status part (RFC 3464).
struct DsnRecipient {
    std::string finalRecipient;     ///< address only (the "rfc822;" type stripped)
    std::string originalRecipient;
    std::string action;             ///< failed, delayed, delivered, relayed, expanded (lower-case)
    std::string status;             ///< e.g. "5.1.1"
    std::string diagnosticCode;
};

struct ParsedMail {
    Address from;
    std::vector<Address> to, cc;
    std::string replyTo;          ///< first Reply-To address, or empty
    std::string returnPath;       ///< Return-Path address ("" also for "<>"); see hasReturnPath
    bool hasReturnPath = false;
    std::string subject, date, messageId, inReplyTo;
    std::vector<std::string> references;   ///< "<id>" each, in order
    std::string text;                      ///< chosen body as UTF-8 text ('\n' line ends)
    std::string html;                      ///< the HTML alternative (UTF-8), if any
    bool textFromHtml = false;             ///< text was made from html
    std::string forwardedText;             ///< text of the first attached message (message/rfc822), if any
    std::vector<Attachment> attachments;
    std::vector<std::string> defects;      ///< human-readable, one per problem found
    /// Top-level header fields, names as written, values unfolded and decoded (UTF-8), in order.
    std::vector<std::pair<std::string, std::string>> headers;

    // MIME structure facts the classifier needs.
    std::string contentType;                ///< top-level "type/subtype", lower-case
    std::string reportType;                 ///< multipart/report; report-type=..., lower-case
    bool hasDeliveryStatus = false;         ///< a message/delivery-status part was seen
    bool hasFeedbackReport = false;         ///< a message/feedback-report part (ARF) was seen
    bool hasAttachedMessage = false;        ///< message/rfc822 or text/rfc822-headers part
    std::string returnedMessageId;          ///< Message-ID of the first attached message or headers part
    std::vector<DsnRecipient> deliveryStatus;
    std::vector<std::string> feedbackRecipients;  ///< ARF Original-Rcpt-To / Removal-Recipient
    std::string reportingMta;

    /// First header value with this name (case-insensitive), or nullptr.
    const std::string* header(const std::string& name) const;
};

}  // namespace sm::mail
