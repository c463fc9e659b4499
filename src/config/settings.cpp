#include "config/settings.h"

namespace sm::config {

mail::ImapSettings imapSettings(const Settings& settings, const InboundSettings& in) {
    mail::ImapSettings is;
    is.url = in.url;
    is.startTls = in.startTls;
    is.verifyPeer = in.verifyPeer;
    is.caFile = in.caFile;
    is.username = in.username;
    is.password = in.password;
    // Never hold more of one message than the limit (plus one 128 KB chunk): a
    // message over it is recorded from its header alone.
    is.maxMessageBytes = static_cast<std::uint64_t>(settings.process.maxMessageBytes);
    return is;
}

}  // namespace sm::config
