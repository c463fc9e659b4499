// Delivery into a local Maildir (the embedded default: no server needed).
#pragma once

#include <string>
#include <string_view>

#include "mail/transport.h"

namespace sm::mail {

/// Writes each mail into DIR/tmp/<unique>, fsyncs it, renames it to DIR/new/<unique>
/// and fsyncs DIR/new (the Maildir delivery protocol). The file holds exactly the
/// given bytes. DIR/{tmp,new,cur} are created when missing. A relative DIR is used
/// as given (relative to the process's working directory). Errors (disk full,
/// permission, not a directory) are TemporaryFailure with the errno text and
/// serverUnavailable = true. Safe to use from several threads and processes at once.
class SpoolTransport final : public Transport {
public:
    explicit SpoolTransport(std::string directory);

    DeliveryOutcome send(const Envelope& envelope, std::string_view messageId,
                         std::string_view bytes) override;
    std::string describe() const override;

    const std::string& directory() const { return dir_; }

    /// A Maildir unique name: "<sec>.M<usec>P<pid>Q<counter>R<random>.<host>".
    static std::string uniqueName();

private:
    std::string dir_;
};

}  // namespace sm::mail
