// PagerCounters: what the pager counts, as atomics any thread may read while
// it runs. A Pager keeps its own, or uses storage it is given
// (PagerOptions::counters) — the preload shim puts them in a file mapped
// shared with `tessera run`, which reads them after the program ends however
// it ended, even killed.
//
// Thread-safety: members are atomics, except `latency`, under `latency_mu`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "common/histogram.h"

namespace tessera::vnode {

struct PagerCounters {
  std::atomic<uint64_t> faults{0};          // fault events read
  std::atomic<uint64_t> zero_fills{0};      // served locally: never-written pages
  std::atomic<uint64_t> remote_faults{0};   // served by a read from the pool
  std::atomic<uint64_t> rescues{0};         // served from staging (no network)
  std::atomic<uint64_t> waits{0};           // a second fault on a page already on its way
  std::atomic<uint64_t> prefetches{0};      // pages read ahead of a fault
  std::atomic<uint64_t> prefetch_hits{0};   // faults on prefetched pages still in flight
  std::atomic<uint64_t> probes_touched{0};  // prefetch probes the program used
  std::atomic<uint64_t> probes_untouched{0};
  std::atomic<uint64_t> pages_read{0};
  std::atomic<uint64_t> pages_written{0};
  std::atomic<uint64_t> pages_released{0};  // discarded by the program, given back at the memory nodes
  std::atomic<uint64_t> evictions{0};       // pages moved out to staging
  std::atomic<uint64_t> eviction_moves{0};  // moves asked for them: each a system call and a TLB flush
  std::atomic<uint64_t> clean_drops{0};     // evicted without a write (unchanged)
  std::atomic<uint64_t> io_errors{0};       // failed reads or writes (retried)
  std::atomic<uint64_t> quiet_wakes{0};     // woken by a ready descriptor with nothing to do
  std::atomic<uint64_t> used_pages{0};      // local memory now, in pages
  std::atomic<uint64_t> peak_used_pages{0};
  std::mutex latency_mu;
  LatencyHistogram latency;  // fault event read -> page installed; guarded by latency_mu
};

struct PagerStats;
// A consistent-enough copy for reports (each counter read once).
PagerStats Snapshot(PagerCounters& counters, size_t page_size);

}  // namespace tessera::vnode
