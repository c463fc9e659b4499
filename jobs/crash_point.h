// Fault injection for the crash-safety tests: when SUPPORTMAIL_CRASH_AT names
// this point, the process kills itself with SIGKILL right here, as a power cut
// would. Unset (always, in production) it costs one cached getenv.
#pragma once

namespace sm::jobs {

/// Points used: "fetch.after_commit" (stored, not yet marked on the server),
/// "process.before_commit" (incident written, transaction not committed),
/// "deliver.after_send" (the transport took the mail, the outbox not yet marked).
void crashPoint(const char* name);

}  // namespace sm::jobs
