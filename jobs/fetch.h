// fetch: inbound mail from every configured mailbox (inbound.NAME.*) into the
// inbound table. For each group of messages: store the raw bytes (with Message-ID,
// source, UIDVALIDITY, UID or Maildir key, SHA-256), COMMIT, only then mark them
// \Seen (or move them) on the server, and then advance the mailbox's sync point.
// IMAP downloads a message with no transaction open and stores it in a short one
// of its own (the write lock is never held across network I/O); a Maildir group is
// read and committed in one transaction. The report counts only committed rows.
// A crash between the steps leaves them unmarked; the next run lists them again,
// finds them stored and only marks them. A UIDVALIDITY change starts over from UID 1 and recognises the
// messages already stored by their bytes. A message over process.max_message_bytes
// (known from its file size or RFC822.SIZE before reading it) is recorded from its
// header alone and answered by the process stage: fetch never holds more of one
// message than the limit plus a 128 KB chunk.
#pragma once

#include <string>
#include <vector>

#include <Poco/Logger.h>

#include "config/settings.h"
#include "store/database.h"

namespace sm::jobs {

struct FetchReport {
    int fetched = 0;      ///< new messages stored
    int known = 0;        ///< already stored (re-fetch), only marked
    int tooLarge = 0;
    std::vector<std::string> errors;  ///< one per mailbox that failed, with the cause
    bool temporaryFailure = false;    ///< a server could not be reached
    bool permanentFailure = false;    ///< login denied, mailbox missing, ...
};

FetchReport fetch(store::Database& db, const config::Settings& settings, Poco::Logger& log);

}  // namespace sm::jobs
