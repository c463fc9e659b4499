// IMAP source over libcurl (Debian 12: 7.88). One easy handle per object: one
// connection, one login, one SELECT for all commands.
//
// How libcurl 7.88 is used, and why (measured against Dovecot 2.3, see NOTES.md):
// - Every command is a CURLOPT_CUSTOMREQUEST on the mailbox URL; libcurl SELECTs the
//   mailbox by itself once per connection. For custom commands libcurl hands each
//   response line to the HEADER callback (and only the untagged ones to the write
//   callback); message literals reach only the header callback. So this file collects
//   the header stream of each command and parses it as an IMAP response itself,
//   literals by their byte count: CRLF and everything else stay exact.
// - libcurl caps that stream at 300 KB per command ("Too large response headers",
//   rc 56); a single 300 KB message through custom "BODY.PEEK[]" already fails. So
//   bodies are fetched in partial chunks, "UID FETCH n BODY.PEEK[]<offset.131072>",
//   one command per chunk, and small items (RFC822.SIZE, MOVE) in batches of 100.
// - The URL form "INBOX;UID=n" would bypass the cap but sends BODY[], which sets \Seen.
// - A plain UID SEARCH over ~40,000+ UIDs is one line above the cap (measured: 60,000
//   fails with rc 56); ESEARCH "RETURN (ALL)" answers with ranges and is used when offered.
// - After open(), commands go to "MAILBOX;UIDVALIDITY=n": when libcurl reconnects and
//   SELECTs again it compares, and fails before sending the command if it changed.
// - libcurl clips response lines longer than half its buffer; the buffer is set to
//   its maximum (512 KB), and a chunk (128 KB) can never hold a longer line.
// - libcurl ends a command at the first line that starts with its tag ("A005 "), even
//   inside a literal. A message with such a line would desynchronise the connection:
//   the parser notices (incomplete literal or no tagged completion), the handle is
//   dropped (next call reconnects) and that one message fails with Kind::Protocol.
#include "mail/inbound_source.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

namespace sm::mail {

namespace {

constexpr std::uint64_t kChunkBytes = 128 * 1024;  // one partial BODY.PEEK[] per command
constexpr std::size_t kFetchBatch = 100;           // small FETCH items per command
constexpr std::size_t kStoreBatch = 500;           // UIDs per STORE (silent: no answer lines)
constexpr std::size_t kMoveBatch = 100;            // one "* n EXPUNGE" line per UID
constexpr std::uint64_t kMaxListed = 10'000'000;   // sanity bound on a search answer

void ensureCurlGlobalInit() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (rc != CURLE_OK)
        throw SourceError(SourceError::Kind::Local, false,
                          std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

bool allDigits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::optional<std::uint64_t> parseNumber(const std::string& s) {
    if (!allDigits(s) || s.size() > 19) return std::nullopt;
    return std::stoull(s);
}

std::optional<std::uint32_t> parseUid(const std::string& s) {
    auto n = parseNumber(s);
    if (!n || *n == 0 || *n > 0xFFFFFFFFull) return std::nullopt;
    return static_cast<std::uint32_t>(*n);
}

/// An IMAP quoted string for a mailbox name in a command.
std::string quoteMailbox(const std::string& name) {
    if (name.empty()) throw std::invalid_argument("IMAP folder name is empty");
    std::string q = "\"";
    for (unsigned char c : name) {
        if (c == '\r' || c == '\n' || c == '\0')
            throw std::invalid_argument("IMAP folder name contains CR, LF or NUL");
        if (c >= 0x80)
            throw std::invalid_argument("IMAP folder name '" + name + "' is not ASCII (not supported)");
        if (c == '"' || c == '\\') q += '\\';
        q += static_cast<char>(c);
    }
    return q + "\"";
}

/// "1:3,5,9:10" for sorted, unique UIDs.
std::string uidSet(const std::uint32_t* first, const std::uint32_t* last) {
    std::string out;
    for (const std::uint32_t* p = first; p != last;) {
        const std::uint32_t* q = p;
        while (q + 1 != last && q[1] == q[0] + 1) ++q;
        if (!out.empty()) out += ',';
        out += std::to_string(*p);
        if (q != p) out += ':' + std::to_string(*q);
        p = q + 1;
    }
    return out;
}

/// Appends the UIDs of "4 5 9" (sep ' ') or of the sequence set "4:5,9" (sep ',').
void appendUids(const std::string& text, char sep, std::vector<std::uint32_t>& out) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto j = std::min(text.find(sep, i), text.size());
        const std::string item = text.substr(i, j - i);
        const auto colon = item.find(':');
        if (colon == std::string::npos) {
            if (auto uid = parseUid(item)) out.push_back(*uid);
        } else {
            auto a = parseUid(item.substr(0, colon)), b = parseUid(item.substr(colon + 1));
            if (a && b) {
                if (*a > *b) std::swap(a, b);
                if (*b - *a >= kMaxListed || out.size() + (*b - *a) >= kMaxListed)
                    throw SourceError(SourceError::Kind::Protocol, false,
                                      "IMAP search answer names more than " + std::to_string(kMaxListed) + " UIDs");
                for (std::uint64_t u = *a; u <= *b; ++u) out.push_back(static_cast<std::uint32_t>(u));
            }
        }
        i = j + 1;
    }
}

std::vector<std::uint32_t> sortedUnique(std::vector<std::uint32_t> uids) {
    uids.erase(std::remove(uids.begin(), uids.end(), 0u), uids.end());
    std::sort(uids.begin(), uids.end());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    return uids;
}

// ---------------------------------------------------------------- response parser

/// One IMAP datum of a FETCH response.
struct Value {
    enum class Type { Atom, String, List, Nil } type = Type::Nil;
    std::string text;  // atom text or string bytes (literals exact)
    std::vector<Value> items;
};

/// One response: untagged ("*"), continuation ("+") or tagged.
struct Response {
    std::string tag;
    std::optional<std::uint32_t> number;  // "* 12 FETCH", "* 3 EXISTS"
    std::string keyword;                  // FETCH, EXISTS, SEARCH, OK, NO, BAD, CAPABILITY...
    std::string text;                     // rest of the line (status text, search results...)
    Value data;                           // FETCH: the attribute list
};

struct Incomplete {};  // the stream ended inside a response

/// Parses the header stream of one libcurl perform: every line libcurl received,
/// literals included. Literals are taken by their announced length.
class ResponseParser {
public:
    explicit ResponseParser(const std::string& s) : s_(s) {}

    /// All responses; throws Incomplete if the stream ends inside one.
    std::vector<Response> parseAll() {
        std::vector<Response> out;
        while (pos_ < s_.size()) out.push_back(parseResponse());
        return out;
    }

private:
    Response parseResponse() {
        Response r;
        r.tag = atom();
        if (r.tag == "*") {
            sp();
            std::string tok = atom();
            if (allDigits(tok)) {
                r.number = parseUid(tok).value_or(0);
                sp();
                r.keyword = upper(atom());
                if (r.keyword == "FETCH") {
                    sp();
                    r.data = value();
                    r.text = restOfLine();
                    return r;
                }
            } else {
                r.keyword = upper(tok);
            }
        } else if (r.tag != "+") {
            sp();
            r.keyword = upper(atom());
        }
        if (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
        r.text = restOfLine();
        return r;
    }

    void need(std::size_t n) const {
        if (s_.size() - pos_ < n) throw Incomplete{};
    }

    void sp() {
        if (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
    }

    bool atLineEnd() const {
        return pos_ >= s_.size() || s_[pos_] == '\r' || s_[pos_] == '\n';
    }

    /// Up to SP, '(', ')' or the line end; "[...]" (with spaces) belongs to the atom.
    std::string atom() {
        const std::size_t start = pos_;
        while (pos_ < s_.size()) {
            const char c = s_[pos_];
            if (c == '[') {
                const auto close = s_.find(']', pos_);
                const auto eol = s_.find('\n', pos_);
                if (close == std::string::npos || (eol != std::string::npos && eol < close)) {
                    ++pos_;
                    continue;
                }
                pos_ = close + 1;
                continue;
            }
            if (c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n') break;
            ++pos_;
        }
        if (pos_ >= s_.size()) throw Incomplete{};
        return s_.substr(start, pos_ - start);
    }

    /// Reads "{N}" or "{N+}" then CRLF then N bytes; pos_ is at '{'.
    std::string literal() {
        const auto close = s_.find('}', pos_);
        if (close == std::string::npos) throw Incomplete{};
        std::string digits = s_.substr(pos_ + 1, close - pos_ - 1);
        if (!digits.empty() && digits.back() == '+') digits.pop_back();
        const auto n = parseNumber(digits);
        if (!n) throw Incomplete{};
        pos_ = close + 1;
        lineEnd();
        need(*n);
        std::string bytes = s_.substr(pos_, *n);
        pos_ += *n;
        return bytes;
    }

    void lineEnd() {
        if (pos_ < s_.size() && s_[pos_] == '\r') ++pos_;
        if (pos_ >= s_.size() || s_[pos_] != '\n') throw Incomplete{};
        ++pos_;
    }

    Value value() {
        need(1);
        Value v;
        const char c = s_[pos_];
        if (c == '(') {
            v.type = Value::Type::List;
            ++pos_;
            for (;;) {
                need(1);
                if (s_[pos_] == ')') {
                    ++pos_;
                    break;
                }
                if (s_[pos_] == ' ') {
                    ++pos_;
                    continue;
                }
                if (atLineEnd()) throw Incomplete{};  // a list never spans a bare line end
                v.items.push_back(value());
            }
        } else if (c == '"') {
            v.type = Value::Type::String;
            ++pos_;
            for (;;) {
                need(1);
                char d = s_[pos_++];
                if (d == '"') break;
                if (d == '\\') {
                    need(1);
                    d = s_[pos_++];
                }
                v.text += d;
            }
        } else if (c == '{' || (c == '~' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{')) {
            if (c == '~') ++pos_;
            v.type = Value::Type::String;
            v.text = literal();
        } else {
            v.text = atom();
            v.type = Value::Type::Atom;
            if (upper(v.text) == "NIL") {
                v.type = Value::Type::Nil;
                v.text.clear();
            }
        }
        return v;
    }

    /// The rest of the line; a line ending in a literal marker continues after it.
    std::string restOfLine() {
        std::string out;
        for (;;) {
            const auto eol = s_.find('\n', pos_);
            if (eol == std::string::npos) throw Incomplete{};
            std::size_t end = eol;
            if (end > pos_ && s_[end - 1] == '\r') --end;
            std::string seg = s_.substr(pos_, end - pos_);
            pos_ = eol + 1;
            out += seg;
            // "... {123}" at the end: a literal follows
            if (seg.size() >= 3 && seg.back() == '}') {
                const auto open = seg.rfind('{');
                if (open != std::string::npos) {
                    std::string digits = seg.substr(open + 1, seg.size() - open - 2);
                    if (!digits.empty() && digits.back() == '+') digits.pop_back();
                    if (auto n = parseNumber(digits)) {
                        need(*n);
                        out += "\r\n" + s_.substr(pos_, *n);
                        pos_ += *n;
                        continue;
                    }
                }
            }
            return out;
        }
    }

    const std::string& s_;
    std::size_t pos_ = 0;
};

/// "[UIDVALIDITY 123] text" → {"UIDVALIDITY", "123"}.
std::pair<std::string, std::string> responseCode(const std::string& text) {
    if (text.empty() || text[0] != '[') return {};
    const auto close = text.find(']');
    if (close == std::string::npos) return {};
    const std::string inner = text.substr(1, close - 1);
    const auto sp = inner.find(' ');
    if (sp == std::string::npos) return {upper(inner), ""};
    return {upper(inner.substr(0, sp)), inner.substr(sp + 1)};
}

const Value* fetchItem(const Value& list, const std::string& name) {
    for (std::size_t i = 0; i + 1 < list.items.size(); i += 2)
        if (list.items[i].type == Value::Type::Atom && upper(list.items[i].text) == name)
            return &list.items[i + 1];
    return nullptr;
}

std::optional<std::uint32_t> fetchUid(const Response& r) {
    if (r.keyword != "FETCH") return std::nullopt;
    const Value* v = fetchItem(r.data, "UID");
    return v ? parseUid(v->text) : std::nullopt;
}

// ---------------------------------------------------------------- the source

struct ParsedUrl {
    bool tls = false;
    std::string hostPort;  // as given
    std::string mailbox;   // decoded
    std::string url;       // normalised: scheme://hostport/encoded-mailbox
};

ParsedUrl parseImapUrl(const std::string& url) {
    auto bad = [&](const std::string& why) {
        return std::invalid_argument("invalid IMAP URL '" + url + "': " + why);
    };
    const auto sep = url.find("://");
    if (sep == std::string::npos) throw bad("expected imap://host[:port][/MAILBOX] or imaps://...");
    ParsedUrl p;
    const std::string scheme = upper(url.substr(0, sep));
    if (scheme == "IMAPS")
        p.tls = true;
    else if (scheme != "IMAP")
        throw bad("scheme is not imap or imaps");
    std::string rest = url.substr(sep + 3);
    if (std::any_of(rest.begin(), rest.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
        throw bad("contains spaces or control characters");
    if (rest.find_first_of("?#;") != std::string::npos)
        throw bad("query, fragment or ';' parameters are not allowed");
    const auto slash = rest.find('/');
    p.hostPort = rest.substr(0, slash);
    if (p.hostPort.find('@') != std::string::npos)
        throw std::invalid_argument("invalid IMAP URL: credentials in the URL are not allowed "
                                    "(use the username/password settings)");
    if (p.hostPort.empty()) throw bad("missing host");
    std::string encoded = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!encoded.empty() && encoded.back() == '/') encoded.pop_back();
    if (encoded.empty()) encoded = "INBOX";
    // percent-decode
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        if (encoded[i] == '%') {
            if (i + 2 >= encoded.size() || !std::isxdigit(static_cast<unsigned char>(encoded[i + 1])) ||
                !std::isxdigit(static_cast<unsigned char>(encoded[i + 2])))
                throw bad("bad percent-encoding in the mailbox");
            p.mailbox += static_cast<char>(std::stoi(encoded.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            p.mailbox += encoded[i];
        }
    }
    quoteMailbox(p.mailbox);  // validates
    p.url = (p.tls ? "imaps://" : "imap://") + p.hostPort + "/" + encoded;
    return p;
}

size_t collect(char* data, size_t size, size_t n, void* ud) {
    static_cast<std::string*>(ud)->append(data, size * n);
    return size * n;
}

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

class ImapSource final : public InboundSource {
public:
    explicit ImapSource(const ImapSettings& settings) : settings_(settings), url_(parseImapUrl(settings.url)) {
        if (settings_.startTls && url_.tls)
            throw std::invalid_argument("IMAP settings: startTls is for imap:// URLs; imaps:// is TLS already");
        if (settings_.username.empty()) throw std::invalid_argument("IMAP settings: username is empty");
        ensureCurlGlobalInit();
    }
    ~ImapSource() override { dropHandle(); }
    ImapSource(const ImapSource&) = delete;
    ImapSource& operator=(const ImapSource&) = delete;

    MailboxState open() override {
        // A changed UIDVALIDITY is accepted here, and only here.
        const auto responses = command("SELECT " + quoteMailbox(url_.mailbox), /*checkUidValidity=*/false);
        MailboxState st;
        for (const Response& r : responses) {
            if (r.tag != "*") continue;
            if (r.keyword == "EXISTS" && r.number) st.exists = *r.number;
            if (r.keyword == "OK") {
                const auto [code, arg] = responseCode(r.text);
                if (code == "UIDVALIDITY") st.uidValidity = parseUid(arg).value_or(0);
                if (code == "UIDNEXT") st.uidNext = parseUid(arg).value_or(0);
            }
        }
        if (st.uidValidity == 0)
            throw SourceError(SourceError::Kind::Protocol, false,
                              describe() + ": the SELECT response has no UIDVALIDITY");
        uidValidity_ = st.uidValidity;
        opened_ = true;
        return st;
    }

    std::vector<InboundMessageRef> listSince(std::uint32_t lastUid) override {
        if (lastUid == 0xFFFFFFFFu) return {};
        // ESEARCH (RFC 4731) answers with ranges ("ALL 1:50000"): a plain SEARCH answer
        // for tens of thousands of UIDs is one line longer than libcurl's 300 KB cap.
        const bool esearch = hasCapability("ESEARCH");
        const std::string range = "UID " + std::to_string(lastUid + 1) + ":*";
        std::vector<std::uint32_t> uids;
        for (const Response& r : command(esearch ? "UID SEARCH RETURN (ALL) " + range : "UID SEARCH " + range)) {
            if (r.tag != "*") continue;
            if (r.keyword == "SEARCH") {
                appendUids(r.text, ' ', uids);
            } else if (r.keyword == "ESEARCH") {
                const auto all = upper(r.text).find(" ALL ");
                if (all != std::string::npos) {
                    const std::string set = r.text.substr(all + 5);
                    appendUids(set.substr(0, set.find(' ')), ',', uids);
                }
            }
        }
        // "n:*" means "*:n" when n is above the highest UID, and the server then answers
        // with the last message: drop UIDs <= lastUid.
        uids.erase(std::remove_if(uids.begin(), uids.end(), [&](std::uint32_t u) { return u <= lastUid; }),
                   uids.end());
        uids = sortedUnique(std::move(uids));

        std::vector<InboundMessageRef> out;
        out.reserve(uids.size());
        for (std::size_t i = 0; i < uids.size(); i += kFetchBatch) {
            const std::size_t j = std::min(uids.size(), i + kFetchBatch);
            const std::string set = uidSet(uids.data() + i, uids.data() + j);
            std::vector<std::pair<std::uint32_t, std::uint64_t>> sizes;
            for (const Response& r : command("UID FETCH " + set + " (RFC822.SIZE)")) {
                const auto uid = fetchUid(r);
                const Value* size = uid ? fetchItem(r.data, "RFC822.SIZE") : nullptr;
                if (!size) continue;  // unsolicited FETCH (flags) or another UID
                if (auto n = parseNumber(size->text)) sizes.emplace_back(*uid, *n);
            }
            std::sort(sizes.begin(), sizes.end());
            for (std::size_t k = i; k < j; ++k) {  // in UID order; expunged ones are left out
                auto it = std::lower_bound(sizes.begin(), sizes.end(), std::make_pair(uids[k], std::uint64_t{0}));
                if (it != sizes.end() && it->first == uids[k]) {
                    InboundMessageRef ref;
                    ref.uid = uids[k];
                    ref.size = it->second;
                    out.push_back(std::move(ref));
                }
            }
        }
        return out;
    }

    std::string fetch(const InboundMessageRef& ref) override {
        if (ref.uid == 0) throw std::invalid_argument("ImapSource::fetch: uid 0");
        const std::string uid = std::to_string(ref.uid);
        std::string out;
        for (std::uint64_t offset = 0;;) {
            const std::string section = "BODY.PEEK[]<" + std::to_string(offset) + "." + std::to_string(kChunkBytes) + ">";
            const bool first = offset == 0;
            const auto responses = command("UID FETCH " + uid + (first ? " (RFC822.SIZE " + section + ")" : " " + section));
            const Value* body = nullptr;
            for (const Response& r : responses) {
                if (fetchUid(r) != ref.uid) continue;
                if (first) {
                    if (const Value* size = fetchItem(r.data, "RFC822.SIZE")) {
                        const auto n = parseNumber(size->text);
                        if (n && *n > settings_.maxMessageBytes) throw tooLarge(ref.uid, *n);
                    }
                }
                for (std::size_t i = 0; i + 1 < r.data.items.size(); i += 2) {
                    const std::string name = upper(r.data.items[i].text);
                    if (name.rfind("BODY[]", 0) == 0) body = &r.data.items[i + 1];
                }
                if (body) break;
            }
            // No answer for the UID: expunged and known to be. BODY[] NIL: expunged by
            // another session, not yet announced to ours (Dovecot: "RFC822.SIZE 0 BODY[]<0>
            // NIL"), also between two chunks. Past the end a server sends "", not NIL.
            if ((!body && first) || (body && body->type == Value::Type::Nil))
                throw SourceError(SourceError::Kind::MessageGone, false,
                                  describe() + ": message UID " + uid + " no longer exists");
            if (!body)
                throw SourceError(SourceError::Kind::Protocol, false,
                                  describe() + ": no BODY[] in the answer to UID FETCH " + uid + " at offset " +
                                      std::to_string(offset));
            out += body->text;
            if (out.size() > settings_.maxMessageBytes) throw tooLarge(ref.uid, out.size());
            if (body->text.size() < kChunkBytes) return out;
            offset += body->text.size();
        }
    }

    std::string fetchHeader(const InboundMessageRef& ref) override {
        if (ref.uid == 0) throw std::invalid_argument("ImapSource::fetchHeader: uid 0");
        const std::string uid = std::to_string(ref.uid);
        // The header block only, and at most one chunk of it: enough to answer the sender.
        const auto responses =
            command("UID FETCH " + uid + " (BODY.PEEK[HEADER]<0." + std::to_string(kChunkBytes) + ">)");
        for (const Response& r : responses) {
            if (fetchUid(r) != ref.uid) continue;
            for (std::size_t i = 0; i + 1 < r.data.items.size(); i += 2) {
                const std::string name = upper(r.data.items[i].text);
                if (name.rfind("BODY[HEADER]", 0) == 0) {
                    if (r.data.items[i + 1].type == Value::Type::Nil) break;
                    return r.data.items[i + 1].text;
                }
            }
        }
        throw SourceError(SourceError::Kind::MessageGone, false,
                          describe() + ": message UID " + uid + " no longer exists");
    }

    void markSeen(const std::vector<std::uint32_t>& uidsIn) override {
        const auto uids = sortedUnique(uidsIn);
        for (std::size_t i = 0; i < uids.size(); i += kStoreBatch) {
            const std::size_t j = std::min(uids.size(), i + kStoreBatch);
            command("UID STORE " + uidSet(uids.data() + i, uids.data() + j) + " +FLAGS.SILENT (\\Seen)");
        }
    }

    void moveTo(const std::vector<std::uint32_t>& uidsIn, const std::string& folder) override {
        const std::string target = quoteMailbox(folder);
        const auto uids = sortedUnique(uidsIn);
        if (uids.empty()) return;
        ensureFolder(folder, target);
        const bool move = hasCapability("MOVE");
        if (!move && !hasCapability("UIDPLUS"))
            throw SourceError(SourceError::Kind::Server, false,
                              describe() + ": the server supports neither MOVE nor UIDPLUS; cannot move safely");
        for (std::size_t i = 0; i < uids.size(); i += kMoveBatch) {
            const std::size_t j = std::min(uids.size(), i + kMoveBatch);
            const std::string set = uidSet(uids.data() + i, uids.data() + j);
            if (move) {
                command("UID MOVE " + set + " " + target);
            } else {
                command("UID COPY " + set + " " + target);
                command("UID STORE " + set + " +FLAGS.SILENT (\\Deleted)");
                command("UID EXPUNGE " + set);
            }
        }
    }

    std::string describe() const override {
        return url_.url + " (user " + settings_.username + (settings_.startTls ? ", STARTTLS" : "") + ")";
    }

private:
    SourceError tooLarge(std::uint32_t uid, std::uint64_t size) const {
        return SourceError(SourceError::Kind::TooLarge, false,
                           describe() + ": message UID " + std::to_string(uid) + " has " + std::to_string(size) +
                               " bytes, more than the limit of " + std::to_string(settings_.maxMessageBytes));
    }

    void ensureFolder(const std::string& folder, const std::string& quoted) {
        if (created_.count(folder)) return;
        try {
            command("CREATE " + quoted);
        } catch (const SourceError& e) {
            if (e.kind() != SourceError::Kind::Server) throw;
            // Dovecot: "NO [ALREADYEXISTS] Mailbox already exists"; others may say less
            if (lastTagged_.find("[ALREADYEXISTS]") == std::string::npos) {
                bool listed = false;
                for (const Response& r : command("LIST \"\" " + quoted))
                    if (r.tag == "*" && r.keyword == "LIST") listed = true;
                if (!listed) throw;
            }
        }
        created_.insert(folder);
    }

    bool hasCapability(const std::string& cap) {
        if (capabilities_.empty()) {
            for (const Response& r : command("CAPABILITY"))
                if (r.tag == "*" && r.keyword == "CAPABILITY") capabilities_ = " " + upper(r.text) + " ";
        }
        return capabilities_.find(" " + cap + " ") != std::string::npos;
    }

    CURL* handle() {
        if (h_) return h_;
        h_ = curl_easy_init();
        if (!h_) throw SourceError(SourceError::Kind::Local, true, "curl_easy_init failed");
        curl_easy_setopt(h_, CURLOPT_USERNAME, settings_.username.c_str());
        curl_easy_setopt(h_, CURLOPT_PASSWORD, settings_.password.c_str());
        curl_easy_setopt(h_, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT, settings_.connectTimeoutSeconds);
        curl_easy_setopt(h_, CURLOPT_TIMEOUT, settings_.timeoutSeconds);
        curl_easy_setopt(h_, CURLOPT_TCP_KEEPALIVE, 1L);
        // libcurl clips a response line longer than half its buffer: take the maximum,
        // so a whole 128 KB chunk (which may be one line) always fits.
        curl_easy_setopt(h_, CURLOPT_BUFFERSIZE, static_cast<long>(CURL_MAX_READ_SIZE));
        curl_easy_setopt(h_, CURLOPT_ERRORBUFFER, err_);
        curl_easy_setopt(h_, CURLOPT_HEADERFUNCTION, &collect);
        curl_easy_setopt(h_, CURLOPT_HEADERDATA, &stream_);
        curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, &discard);  // untagged lines again; parsed from the header stream
        if (!url_.tls) curl_easy_setopt(h_, CURLOPT_USE_SSL, static_cast<long>(settings_.startTls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
        curl_easy_setopt(h_, CURLOPT_SSL_VERIFYPEER, settings_.verifyPeer ? 1L : 0L);
        curl_easy_setopt(h_, CURLOPT_SSL_VERIFYHOST, settings_.verifyPeer ? 2L : 0L);
        if (!settings_.caFile.empty()) curl_easy_setopt(h_, CURLOPT_CAINFO, settings_.caFile.c_str());
        return h_;
    }

    void dropHandle() {
        if (h_) curl_easy_cleanup(h_);
        h_ = nullptr;
        capabilities_.clear();
    }

    /// Runs one command on the selected mailbox and returns the responses that
    /// belong to it (those after libcurl's own LOGIN/SELECT on a new connection).
    std::vector<Response> command(const std::string& cmd, bool checkUidValidity = true) {
        const bool check = checkUidValidity && opened_;
        CURL* h = handle();
        // Once open() has seen the UIDVALIDITY, libcurl checks it in its own SELECT on a
        // new connection and fails BEFORE sending cmd if it differs ("INBOX;UIDVALIDITY=n").
        commandUrl_ = check ? url_.url + ";UIDVALIDITY=" + std::to_string(uidValidity_) : url_.url;
        curl_easy_setopt(h, CURLOPT_URL, commandUrl_.c_str());
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, cmd.c_str());
        stream_.clear();
        lastTagged_.clear();
        err_[0] = '\0';
        const CURLcode rc = curl_easy_perform(h);

        std::vector<Response> all;
        bool readable = true;
        try {
            all = ResponseParser(stream_).parseAll();
        } catch (const Incomplete&) {
            readable = false;
        }
        // The last response must be a tagged completion; anything else means libcurl
        // stopped early (a message line that looked like its tag, a clipped line).
        std::size_t lastTag = all.size(), prevTag = all.size();
        for (std::size_t i = 0; i < all.size(); ++i)
            if (all[i].tag != "*" && all[i].tag != "+") {
                prevTag = lastTag;
                lastTag = i;
            }
        if (lastTag != all.size())
            lastTagged_ = all[lastTag].tag + " " + all[lastTag].keyword + " " + all[lastTag].text;

        if (rc != CURLE_OK) {
            SourceError e = errorFor(rc, verb(cmd));
            // A clean NO/BAD leaves the connection usable; anything else: start afresh.
            const bool clean = rc == CURLE_QUOTE_ERROR && readable && lastTag + 1 == all.size();
            if (!clean) dropHandle();
            throw e;
        }
        if (!readable || lastTag == all.size() || lastTag + 1 != all.size()) {
            dropHandle();
            throw SourceError(SourceError::Kind::Protocol, false,
                              describe() + ": unreadable answer to " + verb(cmd) +
                                  " (cut short: libcurl stops at a message line that starts with its command tag, "
                                  "and clips over-long lines); connection reset");
        }
        // A reconnect made libcurl SELECT again: the mailbox must still be the same one.
        if (check) {
            for (const Response& r : all) {
                if (r.tag != "*" || r.keyword != "OK") continue;
                const auto [code, arg] = responseCode(r.text);
                if (code == "UIDVALIDITY" && parseUid(arg) != uidValidity_) {
                    dropHandle();  // the next call fails the same way until open()
                    throw SourceError(SourceError::Kind::UidValidityChanged, false,
                                      describe() + ": UIDVALIDITY changed from the one open() returned to " +
                                          arg + "; call open() again");
                }
            }
        }
        const std::size_t from = prevTag == all.size() ? 0 : prevTag + 1;
        return std::vector<Response>(all.begin() + static_cast<std::ptrdiff_t>(from), all.end());
    }

    /// The command's first words, for messages ("UID FETCH 12").
    static std::string verb(const std::string& cmd) {
        return cmd.substr(0, std::min<std::size_t>(cmd.find(" ("), 60));
    }

    SourceError errorFor(CURLcode rc, const std::string& what) const {
        const std::string detail = std::string(curl_easy_strerror(rc)) + (err_[0] ? std::string(": ") + err_ : "");
        const std::string where = describe();
        using K = SourceError::Kind;
        switch (rc) {
            case CURLE_LOGIN_DENIED:
                if (std::strstr(err_, "Select failed"))  // libcurl reports a failed SELECT so
                    return SourceError(K::Configuration, false,
                                       where + ": mailbox '" + url_.mailbox + "' cannot be selected: " + lastTagged_);
                return SourceError(K::Authentication, false,
                                   "authentication failed for user " + settings_.username + " on " + url_.hostPort +
                                       " (" + detail + ")");
            case CURLE_QUOTE_ERROR:
                return SourceError(K::Server, false,
                                   where + ": " + what + " failed: " + (lastTagged_.empty() ? detail : lastTagged_));
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_CONNECT:
            case CURLE_OPERATION_TIMEDOUT:
            case CURLE_SEND_ERROR:
            case CURLE_GOT_NOTHING:
            case CURLE_SSL_CONNECT_ERROR:
            case CURLE_WEIRD_SERVER_REPLY:
                return SourceError(K::Connection, true, where + ": " + what + ": " + detail);
            case CURLE_RECV_ERROR:
                if (std::strstr(err_, "Too large"))  // libcurl's 300 KB cap: not a network problem
                    return SourceError(K::Protocol, false, where + ": " + what + ": " + detail);
                return SourceError(K::Connection, true, where + ": " + what + ": " + detail);
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_CERTPROBLEM:
            case CURLE_USE_SSL_FAILED:
            case CURLE_UNSUPPORTED_PROTOCOL:
            case CURLE_URL_MALFORMAT:
                return SourceError(K::Configuration, false, where + ": " + what + ": " + detail);
            case CURLE_REMOTE_FILE_NOT_FOUND:
                if (std::strstr(err_, "UIDVALIDITY"))
                    return SourceError(K::UidValidityChanged, false,
                                       where + ": the mailbox's UIDVALIDITY is no longer " + std::to_string(uidValidity_) +
                                           " (mailbox recreated); " + what + " was not run; call open() again");
                return SourceError(K::Configuration, false,
                                   where + ": " + what + ": " + detail + (lastTagged_.empty() ? "" : " (" + lastTagged_ + ")"));
            default:
                return SourceError(K::Connection, true, where + ": " + what + ": " + detail);
        }
    }

    ImapSettings settings_;
    ParsedUrl url_;
    CURL* h_ = nullptr;
    std::string commandUrl_;  // url_.url, plus ";UIDVALIDITY=n" once opened
    std::string stream_;      // header callback: every line of the current command's exchange
    std::string lastTagged_;  // "A005 NO [ALREADYEXISTS] ..." of the current command
    std::string capabilities_;
    std::set<std::string> created_;
    char err_[CURL_ERROR_SIZE] = {};
    bool opened_ = false;
    std::uint32_t uidValidity_ = 0;
};

}  // namespace

std::unique_ptr<InboundSource> makeImapSource(const ImapSettings& settings) {
    return std::make_unique<ImapSource>(settings);
}

}  // namespace sm::mail
