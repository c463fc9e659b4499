// The supportmail program: a POCO ServerApplication with subcommands.
//
//   supportmail [--config FILE] COMMAND [options] [args]
//
// Global options come before the command; each command parses its own options
// (and has its own --help). Exit codes follow sysexits(3): 0 ok, 64 usage,
// 65 bad input data, 69 a server unavailable, 70 internal error, 73 another run of
// this job is in progress (it holds the job's lease; this run did nothing), 75
// temporary failure (retry later), 78 configuration error.
#pragma once

namespace sm::app {

enum ExitCode {
    kExitOk = 0,
    kExitUsage = 64,
    kExitDataErr = 65,
    kExitNoInput = 66,    ///< an input file that is missing, unreadable or a directory
    kExitUnavailable = 69,
    kExitSoftware = 70,
    kExitLeaseHeld = 73,  ///< another run of this job is in progress (holds its lease); nothing done
    kExitTempFail = 75,
    kExitConfig = 78,
};

int runApplication(int argc, char** argv);

}  // namespace sm::app
