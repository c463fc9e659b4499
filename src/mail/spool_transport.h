// Delivery into a local Maildir (the embedded default: no server needed).
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <string_view>

#include "mail/transport.h"

namespace sm::mail {

/// Writes each mail into DIR/tmp/<name>, fsyncs it, links it to DIR/new/<name>
/// and fsyncs DIR/new (the Maildir delivery protocol). The file holds exactly the
/// given bytes. DIR/{tmp,new,cur} are created when missing. A relative DIR is used
/// as given (relative to the process's working directory). Errors (disk full,
/// permission, not a directory) are TemporaryFailure with the errno text and
/// serverUnavailable = true.
///
/// Exactly once: a mail with a Message-ID gets a name derived from it
/// (deliveryName()), so a repeat of a mail already delivered (a deliver killed
/// after writing it, before marking it sent) finds it in new/ or cur/ (also when a
/// reader moved it there and added flags) and reports Sent without a second copy;
/// a leftover of its own in tmp/ is replaced. A mail without Message-ID gets a
/// fresh unique name each time (at least once). A file a reader has deleted cannot
/// be recognised: a repeat after that delivers it again.
///
/// The first send removes files in DIR/tmp not accessed or modified for 36 hours
/// (the Maildir convention: leftovers of writers that died); staleTmpRemoved()
/// says how many. One object may be shared by threads (sends are serialised);
/// two processes may share DIR as long as they never send the same Message-ID at
/// the same time (deliver's lease sees to that).
class SpoolTransport final : public Transport {
public:
    explicit SpoolTransport(std::string directory);

    DeliveryOutcome send(const Envelope& envelope, std::string_view messageId,
                         std::string_view bytes) override;
    std::string describe() const override;

    const std::string& directory() const { return dir_; }

    /// A Maildir unique name: "<sec>.M<usec>P<pid>Q<counter>R<random>.<host>".
    static std::string uniqueName();
    /// The file name of the mail with this Message-ID: "supportmail.<40 hex digits
    /// of its SHA-256>"; uniqueName() for an empty one.
    static std::string deliveryName(std::string_view messageId);

    static constexpr std::int64_t kStaleTmpSeconds = 36 * 3600;
    /// Files in tmp/ older than kStaleTmpSeconds that the first send removed.
    std::size_t staleTmpRemoved() const { return staleTmpRemoved_; }

private:
    std::size_t removeStaleTmpFiles(std::int64_t now);
    bool alreadyDelivered(const std::string& name);

    std::string dir_;
    std::mutex mutex_;
    bool tmpCleaned_ = false;
    std::size_t staleTmpRemoved_ = 0;
    bool curListed_ = false;
    std::pair<std::int64_t, long> curMtime_{0, 0};
    std::set<std::string> curNames_;  // cur/ names without their ":2,FLAGS"
};

}  // namespace sm::mail
