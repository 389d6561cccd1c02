// SpawnProcess: fork + exec of a helper process (a daemon of a local cluster,
// a baseline server) that dies with its parent, starts with no signals
// blocked (whatever the parent blocked for its own signal thread), runs in a
// process group of its own (signals meant for the caller's group do not reach
// it), and writes its output to `log_path` if one is given.
//
// Thread-safety: may be called from any thread; the child only makes
// async-signal-safe calls before exec.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace tessera {

// argv[0] is the program (searched in PATH unless it contains a '/').
Result<pid_t> SpawnProcess(const std::vector<std::string>& argv, const std::string& log_path = "");

// SIGTERM, then SIGKILL if it has not exited within grace_ms; reaps it.
void StopProcess(pid_t pid, int grace_ms);

}  // namespace tessera
