// PickLoopbackPort: a loopback TCP port for a daemon this process is about to
// start (a local cluster's controller and memory nodes, a test's etcd).
//
// The port is free when picked, and the daemon binds it a moment later. Two
// things used to take it in between, failing the daemon's start ("address
// already in use") about once in a few hundred clusters: the kernel handing
// the same port to this process's next pick (binding port 0 and closing does
// that), and an outgoing connection taking it as its ephemeral port. So the
// pick is at random from below the kernel's ephemeral range
// (ip_local_port_range), where no connect() ever binds, is never the same
// twice in one process, and is checked free by binding it.
//
// Thread-safety: may be called from any thread.
#pragma once

#include <string>

#include "common/result.h"

namespace tessera {

Result<int> PickLoopbackPort();

// "127.0.0.1:<PickLoopbackPort()>".
Result<std::string> PickLoopbackAddress();

}  // namespace tessera
