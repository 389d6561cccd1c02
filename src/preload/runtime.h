// Runtime: the preload shim's life inside a program — what `tessera run`
// tells it through the environment, the connection to the pool, the pager
// serving the managed range, the heap carved from it, and the live report
// (report.h).
//
// Environment (set by `tessera run`):
//   TESSERA_CONTROLLER   controller address
//   TESSERA_REGION       the region holding this program's memory
//   TESSERA_OWNER_PID    set by the shim: the process that holds the region
//                        (other processes the program starts stay local)
//   TESSERA_CACHE        local cache, bytes
//   TESSERA_PREFETCH     "0" turns the prefetcher off
//   TESSERA_THRESHOLD    allocations below this many bytes stay local (0)
//   TESSERA_STATS_FILE   the shared report (report.h), kept live
// Without TESSERA_REGION the shim stays out of the way: every call goes to
// the C library.
//
// Ownership: one Runtime per process, created by the shim's constructor and
// never destroyed (the program may touch its memory until the very end).
// Thread-safety: Start runs once, before main; Heap() from any thread.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "preload/heap.h"

namespace tessera::preload {

// Starts the pool side from the environment; a null heap when the shim is
// not asked to manage anything.
Result<ManagedHeap*> StartRuntime(void (*mark_thread_unmanaged)());

}  // namespace tessera::preload
