// Plain descriptions of outgoing mail shared by the composer, the templates and
// the transports. No I/O here.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <Poco/Timestamp.h>

namespace sm::mail {

/// A mailbox: display name (UTF-8, may be empty) and address (ASCII addr-spec).
struct Address {
    std::string name;
    std::string email;
};

/// What the composer turns into RFC 5322 bytes.
struct OutgoingMessage {
    Address from;
    std::vector<Address> to;
    std::vector<Address> cc;
    std::string subject;          ///< UTF-8; RFC 2047-encoded by the composer when needed
    std::string text;             ///< UTF-8 plain-text body (required)
    std::string html;             ///< UTF-8 HTML alternative; empty = text/plain only
    std::string inReplyTo;        ///< "<id@host>" or empty
    std::vector<std::string> references;  ///< "<id@host>" each
    std::string autoSubmitted = "auto-generated";  ///< RFC 3834 value; empty = header omitted
    std::vector<std::pair<std::string, std::string>> extraHeaders;  ///< name, UTF-8 value
    std::string messageIdDomain = "supportmail.invalid";  ///< right-hand side of Message-ID
    /// "<...>" from newMessageId(): the Message-ID of a mail queued earlier and rendered
    /// now (a retry carries the same one); empty = a fresh one.
    std::string messageId;
    Poco::Timestamp date;         ///< the Date header
};

/// The composed bytes (CRLF line endings) and the Message-ID they carry ("<...>").
struct ComposedMail {
    std::string messageId;
    std::string bytes;
};

/// SMTP envelope of one queued mail.
struct Envelope {
    std::string from;                     ///< reverse-path address, may be empty ("<>")
    std::vector<std::string> recipients;  ///< forward-paths
};

}  // namespace sm::mail
