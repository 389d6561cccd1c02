// Runtime: the preload shim's life inside a program. `tessera run` tells it
// through the environment where its agent is; the shim joins the agent
// (vnode/agent_link.h), which serves every fault of the managed range from
// outside the program. What stays here: the heap carved from the range, the
// live heap counters (report.h), and the link's helper thread.
//
// Environment (set by `tessera run`):
//   TESSERA_AGENT        the agent's socket
//   TESSERA_OWNER_PID    set by the shim: the program's process, whose heap
//                        counters go to the report (the other processes it
//                        starts are served too, and counted by the agent)
//   TESSERA_THRESHOLD    allocations below this many bytes stay local (0)
//   TESSERA_STATS_FILE   the shared report (report.h), created by `tessera run`
// Without TESSERA_AGENT the shim stays out of the way: every call goes to the
// C library.
//
// Ownership: one Runtime per process, created by the shim's constructor and
// never destroyed (the program may touch its memory until the very end).
// Thread-safety: StartRuntime runs once, before main; OnForkChild in a
// forked child; OnForkParent from any thread that forked.
#pragma once

#include "common/result.h"
#include "preload/heap.h"

namespace tessera::preload {

// Starts the session with the agent from the environment; a null heap when
// the shim is not asked to manage anything, or the agent keeps this process
// local. `mark_thread_unmanaged` runs first on the helper thread.
Result<ManagedHeap*> StartRuntime(void (*mark_thread_unmanaged)());

// In a child forked without exec: the agent serves its copy of the range
// (vnode::AgentLink::OnForkChild).
void OnForkChild();

// In the parent after such a fork: returns once the agent has saved what the
// child needs of our memory (vnode::AgentLink::OnForkParent).
void OnForkParent();

}  // namespace tessera::preload
