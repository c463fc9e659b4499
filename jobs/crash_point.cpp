#include "jobs/crash_point.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace sm::jobs {

void crashPoint(const char* name) {
    static const char* wanted = std::getenv("SUPPORTMAIL_CRASH_AT");
    if (wanted && std::strcmp(wanted, name) == 0) ::kill(::getpid(), SIGKILL);
}

}  // namespace sm::jobs
