// SharedReport: the figures a program run under `tessera run` leaves behind —
// the pager's counters and the heap's — kept live in a file the shim maps
// shared (TESSERA_STATS_FILE), so that `tessera run` can read them after the
// program ends, whether it returned, called _exit, or was killed.
//
// The shim and the `tessera` binary come from one build: the layout is
// checked by magic and size, not versioned.
//
// Thread-safety: the program writes (atomics); the reader reads once the
// program is gone.
#pragma once

#include <cstdint>

#include "preload/heap.h"
#include "vnode/counters.h"

namespace tessera::preload {

struct SharedReport {
  static constexpr uint64_t kMagic = 0x31617265737365'74ull;  // "tessera1", little-endian
  uint64_t magic = kMagic;
  uint64_t size = sizeof(SharedReport);
  uint64_t page_size = 0;
  HeapCounters heap;
  vnode::PagerCounters pager;
};

}  // namespace tessera::preload
