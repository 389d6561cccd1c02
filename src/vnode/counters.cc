#include "vnode/counters.h"

#include "vnode/pager.h"

namespace tessera::vnode {

PagerStats Snapshot(PagerCounters& c, size_t page_size) {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  PagerStats s{.faults = get(c.faults),
               .zero_fills = get(c.zero_fills),
               .remote_faults = get(c.remote_faults),
               .rescues = get(c.rescues),
               .waits = get(c.waits),
               .prefetches = get(c.prefetches),
               .prefetch_hits = get(c.prefetch_hits),
               .probes_touched = get(c.probes_touched),
               .probes_untouched = get(c.probes_untouched),
               .pages_read = get(c.pages_read),
               .pages_written = get(c.pages_written),
               .pages_released = get(c.pages_released),
               .evictions = get(c.evictions),
               .eviction_moves = get(c.eviction_moves),
               .clean_drops = get(c.clean_drops),
               .io_errors = get(c.io_errors),
               .used_bytes = get(c.used_pages) * page_size,
               .peak_used_bytes = get(c.peak_used_pages) * page_size};
  std::lock_guard lk(c.latency_mu);
  s.fault_p50_ns = c.latency.Percentile(50);
  s.fault_p99_ns = c.latency.Percentile(99);
  return s;
}

}  // namespace tessera::vnode
