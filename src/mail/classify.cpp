// Hygiene and content classification; every keyword lives in the tables below.
#include "mail/classify.h"

#include "domain/requests.h"

#include "mail/request_fields.h"
#include "mail/html_text.h"
#include "mail/mime_parser.h"
#include "mail/unicode_text.h"

#include <Poco/UTF8String.h>

#include <algorithm>
#include <cstring>

namespace sm::mail {
namespace {

// ------------------------------------------------------------ keyword tables
// All lower-case; matched as substrings of the lower-cased text.

/// Local parts of senders that only ever send bounces.
const char* const kDaemonSenders[] = {"mailer-daemon", "postmaster", "post_master", "mail-delivery-subsystem",
                                      "mail delivery subsystem", "mdaemon", "mailerdaemon",
                                      "bounce", "bounces", "mail-daemon", "maildelivery",
                                      "nobody", "root", "mailadmin", "double-bounce"};

/// Subject wording of bounces.
const char* const kBounceSubjects[] = {
    "undeliver", "undelivered", "delivery status notification", "delivery failure",
    "delivery failed", "delivery has failed", "failure notice", "returned mail", "mail delivery failed",
    "mail delivery system", "returned to sender", "non remis", "could not be delivered", "delivery problem",
    "nondeliverable", "non-deliverable", "non deliverable", "not delivered", "mail system error",
    "delivery notification", "warning: could not send message", "delayed mail", "delivery delayed",
    "message delayed", "unzustellbar", "notificación del estado del envío", "mail could not be delivered",
    "permanent error", "delivery report", "rejected", "bounce", "fehlgeschlagen", "sistema de entrega",
    "message you sent", "unable to deliver", "nicht zugestellt", "delivery notice", "mail failure",
    "returned message", "error sending message", "mensaje no entregado", "message not delivered",
    "undeliverable mail", "mail returned", "abuse report", "spam report", "complaint", "mail failed",
    "returning message", "returning to sender", "error sending your mail", "are not member", "loop alert",
    "не доставлено", "メールエラー", "errors from", "delivery status", "mail error", "transcript"};

/// Body wording of bounces (checked for daemon senders and empty return paths).
const char* const kBounceBodies[] = {
    "could not be delivered", "undeliverable", "delivery has failed", "permanent error",
    "user unknown", "unknown user", "mailbox unavailable", "does not exist", "no such user",
    "recipient address rejected", "message could not be delivered", "delivery to the following",
    "following address", "returned to sender", "was not delivered", "couldn't be delivered",
    "delivery failed", "failed permanently", "550 ", "554 ", "552 ", "5.1.1", "5.7.1", "5.0.0",
    "this is the mail system", "mail delivery failed", "i'm afraid i wasn't able to deliver",
    "unable to deliver", "delivery status notification", "host unknown", "relay access denied",
    "quota exceeded", "mailbox full", "over quota", "message delayed", "could not deliver",
    "not be delivered", "delivery attempt", "rejected", "non remis", "unzustellbar",
    "original message", "undelivered message", "failed recipient", "did not reach", "not recognized",
    "transcript of session", "failed addresses", "no valid recipients", "unknown host", "not a member",
    "duplicated message-id", "could not be delivered to"};

/// Wording that makes a bounce whoever sends it (machine-readable notices).
const char* const kBounceStrong[] = {"\"notificationtype\":\"bounce\"", "\"notificationtype\": \"bounce\"",
                                     "\"notificationtype\":\"complaint\"", "\"notificationtype\": \"complaint\""};

/// Local-part prefixes / suffixes of list robots (their notices are bounces too).
const char* const kRobotPrefixes[] = {"owner-", "bounce-", "bounces-"};
const char* const kRobotSuffixes[] = {"-admin", "-owner", "-bounces", "-request", "-errors"};

/// Wording of temporary failures (the bounce is then not permanent).
const char* const kTemporary[] = {"delayed", "will retry", "temporary", "not yet been delivered",
                                  "warning: message", "still trying", "4.4.7", "4.4.1", "4.2.2"};

/// Subjects of auto-replies (used with the headers below).
const char* const kAutoReplySubjects[] = {"auto:", "automatic reply", "autoreply", "auto-reply",
                                          "auto reply", "out of office", "out of the office",
                                          "abwesenheitsnotiz", "réponse automatique",
                                          "respuesta automática", "trả lời tự động"};

// Wordings of what people ask for, in English and Vietnamese. Matched on folded text
// (foldForMatch: any case, with or without diacritics), so "gửi lại mã", "gui lai ma"
// and "GỬI LẠI MÃ" are one entry. Request labels live in request_fields.cpp, product
// aliases in configuration (products.*.aliases).

/// A resend of the IDs is asked for.
const char* const kResend[] = {"resend", "re-send", "send again", "send me again", "send us again",
                               "send them again", "send it again", "lost my id", "lost our id", "lost the id",
                               "lost id", "lost access id", "forgot my id", "forgot our id", "forgotten",
                               "ids again", "id again", "can't find our id", "cannot find our id",
                               "gửi lại", "quên id", "mất id", "quên mã", "mất mã", "cấp lại mã", "cấp lại id",
                               "không tìm thấy mã"};

/// The balance / benefits are asked for.
const char* const kBenefits[] = {"balance", "benefits", "benefit", "remaining incidents", "incidents remaining",
                                 "incidents left", "incidents do we have", "incidents we have",
                                 "how many incidents", "how many support incidents", "incidents are left",
                                 "số dư", "quyền lợi", "còn bao nhiêu sự cố", "còn mấy sự cố", "số sự cố còn lại",
                                 "sự cố còn lại", "bao nhiêu sự cố", "bao nhiêu lượt hỗ trợ"};

/// An Action Pack benefit is to be activated.
const char* const kActivation[] = {"activate", "activation", "kích hoạt"};

/// Folded forms of a wording table, built once.
template <size_t N>
std::vector<std::string> foldedTable(const char* const (&words)[N]) {
    std::vector<std::string> out;
    for (const char* w : words) out.push_back(foldForMatch(w));
    return out;
}

bool containsFolded(const std::string& foldedHaystack, const std::vector<std::string>& foldedNeedles) {
    for (const auto& n : foldedNeedles)
        if (foldedHaystack.find(n) != std::string::npos) return true;
    return false;
}

// ------------------------------------------------------------ helpers

std::string lowerUtf8(const std::string& s) {
    // ASCII lowers byte by byte; POCO converts every string through its Unicode tables.
    if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
        std::string r = s;
        for (auto& c : r)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        return r;
    }
    try {
        return Poco::UTF8::toLower(s);
    } catch (...) {
        std::string r = s;
        for (auto& c : r)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        return r;
    }
}

template <size_t N>
bool containsAny(const std::string& haystack, const char* const (&needles)[N]) {
    for (const char* n : needles)
        if (haystack.find(n) != std::string::npos) return true;
    return false;
}

std::string headerLower(const ParsedMail& m, const char* name) {
    const std::string* v = m.header(name);
    return v ? lowerUtf8(*v) : std::string();
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t b = s.find_first_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b);
}

bool isDaemonAddress(const std::string& addr, const std::string& name) {
    std::string a = lowerUtf8(addr), n = lowerUtf8(name);
    std::string local = a.substr(0, a.find('@'));
    for (const char* d : kDaemonSenders) {
        if (local == d || local.rfind(std::string(d) + "-", 0) == 0 || local.rfind(std::string(d) + "+", 0) == 0 ||
            local.rfind(std::string(d) + "=", 0) == 0)
            return true;
    }
    for (const char* p : kRobotPrefixes)
        if (local.rfind(p, 0) == 0) return true;
    for (const char* suf : kRobotSuffixes) {
        std::string sfx(suf);
        if (local.size() > sfx.size() && local.compare(local.size() - sfx.size(), sfx.size(), sfx) == 0) return true;
    }
    return n.find("mailer-daemon") != std::string::npos || n.find("mail delivery") != std::string::npos ||
           n.find("postmaster") != std::string::npos || n.find("mailer daemon") != std::string::npos;
}

/// Amazon SES/SNS JSON notices: "bounce", "complaint", "delivery" or empty.
std::string snsNotificationType(const std::string& lowerText) {
    for (size_t p = lowerText.find("notificationtype"); p != std::string::npos;
         p = lowerText.find("notificationtype", p + 1)) {
        std::string after;
        for (size_t i = p + 16; i < lowerText.size() && after.size() < 12 && i < p + 40; ++i)
            if (lowerText[i] >= 'a' && lowerText[i] <= 'z') after.push_back(lowerText[i]);
        for (const char* t : {"bounce", "complaint", "delivery"})
            if (after.rfind(t, 0) == 0) return t;
    }
    return {};
}

bool isMailerDaemon(const Address& a) {
    std::string addr = lowerUtf8(a.email), name = lowerUtf8(a.name);
    return addr.rfind("mailer-daemon", 0) == 0 || name.find("mailer-daemon") != std::string::npos ||
           name.find("mail delivery") != std::string::npos || name.find("mailer daemon") != std::string::npos;
}

bool isAsciiAlnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isLocalPartChar(char c) { return isAsciiAlnum(c) || std::strchr("._%+=#&'/!-", c) != nullptr; }
bool isLabelChar(char c) { return isAsciiAlnum(c) || c == '-'; }

void collectAddresses(const std::string& text, const ParsedMail& m, std::vector<std::string>& out) {
    std::string_view body(text);
    // Stop at the copy of the original message: a line that opens it ("----- Original
    // message -----", "Received: ..."), not the words inside a sentence ("The original
    // message was received at ...", sendmail's opening line).
    size_t cut = std::string::npos;
    const std::string lowered = lowerUtf8(text);
    for (size_t pos = 0; pos < lowered.size() && cut == std::string::npos;) {
        size_t nl = lowered.find('\n', pos);
        size_t end = nl == std::string::npos ? lowered.size() : nl;
        size_t b = lowered.find_first_not_of("-= \t>", pos);
        if (b != std::string::npos && b < end) {
            std::string_view line(lowered.data() + b, end - b);
            for (const char* marker : {"original message", "received:", "content-type: message/rfc822",
                                       "this is a copy", "below this line"})
                if (line.rfind(marker, 0) == 0) cut = pos;
        }
        pos = end + 1;
    }
    std::string head(body.substr(0, std::min<size_t>(cut == std::string::npos ? text.size() : cut, 20000)));
    auto skip = [&](const std::string& a) {
        std::string l = lowerUtf8(a);
        if (isDaemonAddress(l, "")) return true;
        if (l == lowerUtf8(m.from.email)) return true;
        for (const auto& t : m.to)
            if (l == lowerUtf8(t.email)) return true;
        return std::find(out.begin(), out.end(), l) != out.end();
    };
    for (std::string a : addressRuns(head)) {
        if (out.size() >= 20) break;
        while (!a.empty() && (a.back() == '.' || a.back() == '-')) a.pop_back();
        if (!skip(a)) out.push_back(lowerUtf8(a));
    }
}

bool isBounce(const ParsedMail& m) {
    if (m.hasDeliveryStatus || m.hasFeedbackReport) return true;
    if (m.contentType == "multipart/report" &&
        (m.reportType == "delivery-status" || m.reportType == "feedback-report" || m.reportType.empty()))
        return true;
    if (const std::string* v = m.header("X-Apple-Unsubscribe"))
        if (lowerUtf8(*v).find("true") != std::string::npos) return true;  // feedback: unsubscribe
    std::string subject = lowerUtf8(m.subject);
    std::string text = lowerUtf8(m.text.substr(0, 20000));
    if (containsAny(text, kBounceStrong)) return true;
    if (!snsNotificationType(text).empty()) return true;
    bool daemon = isDaemonAddress(m.from.email, m.from.name) || (m.hasReturnPath && m.returnPath.empty());
    bool bounceSubject = containsAny(subject, kBounceSubjects);
    if (daemon && (bounceSubject || containsAny(text, kBounceBodies))) return true;
    // A bounce forwarded by a person ("Fwd: Returned mail") still is one.
    if (bounceSubject && (text.find("mailer-daemon") != std::string::npos ||
                          text.find("mail delivery subsystem") != std::string::npos))
        return true;
    // Some MTAs send from ordinary-looking addresses but with unmistakable subjects and a copy of
    // the original message attached.
    if (bounceSubject && m.hasAttachedMessage) return true;
    return false;
}

}  // namespace

std::string toString(Classification c) {
    switch (c) {
        case Classification::Request: return "request";
        case Classification::FollowUp: return "follow_up";
        case Classification::Resend: return "resend";
        case Classification::Benefits: return "benefits";
        case Classification::Bounce: return "bounce";
        case Classification::AutoReply: return "auto_reply";
        case Classification::Junk: return "junk";
        case Classification::NoRequest: return "no_request";
    }
    return "junk";
}

bool isListMail(const ParsedMail& m) {
    const std::string precedence = trimmed(headerLower(m, "Precedence"));
    return precedence == "bulk" || precedence == "junk" || precedence == "list" || m.header("List-Id") ||
           m.header("List-Unsubscribe") || m.header("List-Post");
}

Classification classifyHygiene(const ParsedMail& m, BounceInfo* out, const RequestReading* reading) {
    // RFC 3834 auto-replies first when they say so explicitly and are not DSNs.
    std::string autoSubmitted = trimmed(headerLower(m, "Auto-Submitted"));
    // RFC 3834: a mail that declares itself an auto-reply is one, unless it
    // carries the marks of a delivery report. We mark an address as bouncing
    // only on strong evidence (a postmaster's "bounce notification" saying
    // auto-replied is not enough).
    if (autoSubmitted.rfind("auto-replied", 0) == 0 && !m.hasDeliveryStatus && !m.hasFeedbackReport &&
        m.contentType != "multipart/report" && !m.header("X-Failed-Recipients") && !m.header("X-Apple-Unsubscribe") &&
        !isMailerDaemon(m.from)) {
        return Classification::AutoReply;
    }
    if (isBounce(m)) {
        if (out) {
            out->recipients.clear();
            bool anyFailed = false, anyPermanent = false, anyStatus = false;
            for (const auto& ds : m.deliveryStatus) {
                std::string r = lowerUtf8(ds.finalRecipient.empty() ? ds.originalRecipient : ds.finalRecipient);
                if (ds.action == "delivered" || ds.action == "relayed" || ds.action == "expanded") continue;
                if (!r.empty() && std::find(out->recipients.begin(), out->recipients.end(), r) == out->recipients.end())
                    out->recipients.push_back(r);
                if (ds.action == "failed") anyFailed = true;
                if (!ds.status.empty()) {
                    anyStatus = true;
                    if (ds.status[0] == '5') anyPermanent = true;
                }
            }
            std::string sns = snsNotificationType(lowerUtf8(m.text.substr(0, 20000)));
            if (sns == "delivery") {
                out->permanent = false;  // a delivery report: nobody bounced
            } else if (m.deliveryStatus.empty() || out->recipients.empty()) {
                // Named by the report or the MTA's own header before any guess from the text.
                for (const auto& a : m.feedbackRecipients) out->recipients.push_back(lowerUtf8(a));
                if (const std::string* failed = m.header("X-Failed-Recipients"))
                    for (const auto& a : parseAddressList(*failed))
                        if (a.email.find('@') != std::string::npos) out->recipients.push_back(lowerUtf8(a.email));
                if (out->recipients.empty()) collectAddresses(m.text, m, out->recipients);
                out->permanent = !containsAny(lowerUtf8(m.subject + "\n" + m.text.substr(0, 5000)), kTemporary);
            } else {
                out->permanent = anyPermanent || (anyFailed && !anyStatus);
            }
        }
        return Classification::Bounce;
    }
    if (!autoSubmitted.empty() && autoSubmitted != "no") return Classification::AutoReply;
    if (const std::string* v = m.header("X-Apple-Action"))
        if (lowerUtf8(*v).find("vacation") != std::string::npos) return Classification::AutoReply;
    // X-Auto-Response-Suppress is not among these: Outlook and Exchange put it on mail people write
    // (meeting requests, mail through some add-ins) as a wish about responders; a request carrying it
    // still opens a case and is answered. Exchange's own automatic replies say so in their subject.
    if (m.header("X-Autoreply") || m.header("X-Autorespond") || m.header("X-Autoresponder"))
        return Classification::AutoReply;
    std::string precedence = trimmed(headerLower(m, "Precedence"));
    if (precedence == "auto_reply") return Classification::AutoReply;
    if (m.contentType == "multipart/report" && m.reportType == "disposition-notification")
        return Classification::AutoReply;
    if (isListMail(m)) return Classification::Junk;
    std::string subject = lowerUtf8(m.subject);
    if (containsAny(subject, kAutoReplySubjects)) return Classification::AutoReply;

    // Content classes.
    if (domain::findCaseNumber(m.subject) || !m.inReplyTo.empty() || !m.references.empty())
        return Classification::FollowUp;
    return reading ? classifyContent(m, *reading) : classifyContent(m);
}

Classification classifyContent(const ParsedMail& m) { return classifyContent(m, readRequest(m)); }

Classification classifyContent(const ParsedMail& m, const RequestReading& reading) {
    static const auto resend = foldedTable(kResend);
    static const auto benefits = foldedTable(kBenefits);
    const RequestFields& fields = reading.fields;
    bool hasIds = fields.count("access_id") || fields.count("contract_id");
    if (hasIds || fields.count("severity") || fields.count("product")) return Classification::Request;
    // Quoted text of an earlier mail does not ask anything: only the new lines count.
    std::string own;
    std::string_view text(m.text);
    text = text.substr(0, 20000);
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        if (!line.empty() && line[0] == '>') continue;
        own.append(line.data(), line.size());
        own.push_back('\n');
    }
    std::string hay = foldForMatch(m.subject + "\n" + own);
    if (containsFolded(hay, resend)) return Classification::Resend;
    if (containsFolded(hay, benefits)) return Classification::Benefits;
    return Classification::NoRequest;
}

RequestReading readRequest(const ParsedMail& m) {
    auto labelled = [](const RequestFields& f) {
        return f.count("access_id") || f.count("contract_id") || f.count("product") || f.count("severity");
    };
    RequestReading body{m.text, extractRequestFields(m.text)};
    if (labelled(body.fields)) return body;
    if (!m.html.empty() && !m.textFromHtml) {
        RequestReading fromHtml{htmlToText(m.html), {}};
        fromHtml.fields = extractRequestFields(fromHtml.text);
        if (labelled(fromHtml.fields)) return fromHtml;
    }
    if (!m.forwardedText.empty()) {
        RequestReading forwarded{m.forwardedText, extractRequestFields(m.forwardedText)};
        if (labelled(forwarded.fields)) return forwarded;
    }
    return body;
}

std::string requestText(const ParsedMail& m) { return readRequest(m).text; }

bool asksForActivation(const ParsedMail& m) {
    static const auto words = foldedTable(kActivation);
    return containsFolded(foldForMatch(m.subject + "\n" + m.text), words);
}

bool looksVietnamese(const std::string& text) {
    // Letters only Vietnamese uses among the Latin scripts: ơ ư ă đ and the dot below.
    for (const char* letter : {"ơ", "ư", "ă", "đ", "Ơ", "Ư", "Ă", "Đ", "ạ", "ậ", "ệ", "ộ", "ợ", "ự", "ị", "ọ", "ụ"})
        if (text.find(letter) != std::string::npos) return true;
    return false;
}

// See classify.h. What the pattern
// [A-Za-z0-9._%+=#&'/!-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+ finds searching from the end of
// the previous match, read in one pass. std::regex did this with libstdc++'s
// backtracking executor: quadratic time and a recursion as deep as the run on a long
// run of address characters (fuzz_mime: 12 s on a 23 KB mail under ASan).
std::vector<std::string> addressRuns(std::string_view text) {
    std::vector<std::string> out;
    std::size_t from = 0;  // the end of the previous match: no local part starts before it
    for (std::size_t at = text.find('@'); at != std::string_view::npos;
         at = text.find('@', at + 1)) {
        std::size_t start = at;
        while (start > from && isLocalPartChar(text[start - 1])) --start;
        if (start == at) continue;
        std::size_t end = at + 1;
        while (end < text.size() && isLabelChar(text[end])) ++end;
        if (end == at + 1) continue;
        // One or more ".label"; the match ends after the last whole one.
        std::size_t last = std::string_view::npos;
        for (std::size_t p = end; p < text.size() && text[p] == '.';) {
            std::size_t q = p + 1;
            while (q < text.size() && isLabelChar(text[q])) ++q;
            if (q == p + 1) break;
            last = p = q;
        }
        if (last == std::string_view::npos) continue;
        out.emplace_back(text.substr(start, last - start));
        from = last;
        at = last - 1;  // the next '@' is searched after the match
    }
    return out;
}


}  // namespace sm::mail
