// Fault injection for the crash-safety tests: when SUPPORTMAIL_CRASH_AT names
// this point, the process kills itself with SIGKILL right here, as a power cut
// would. Compiled in only when the tests are built (CMake's SUPPORTMAIL_TESTS,
// on by default); a production build with the tests off has an empty function
// here and reads no environment variable. With the hook in, an unset variable
// costs one cached getenv.
#pragma once

namespace sm::jobs {

/// Points used: "fetch.after_commit" (stored, not yet marked on the server),
/// "process.before_commit" (incident written, transaction not committed),
/// "deliver.after_send" (the transport took the mail, the outbox not yet marked).
/// Safe from any thread; returns normally unless this is the point named.
void crashPoint(const char* name);

}  // namespace sm::jobs
