#include "bench/page_driver.h"

#include <vector>

#include "common/clock.h"

namespace tessera::bench {

Result<PhaseReport> DrivePages(Region& region, IoQueue& queue, const DriveOptions& o, const NextPage& next,
                               const PreparePage& prepare, const PageDone& on_done) {
  const uint32_t ps = region.page_size();
  const uint32_t depth = o.depth == 0 ? 1 : o.depth;
  std::vector<uint8_t> buffers(uint64_t{depth} * ps);
  std::vector<uint64_t> page_of(depth), started(depth);
  std::vector<uint32_t> free_slots;
  for (uint32_t i = depth; i-- > 0;) free_slots.push_back(i);
  std::vector<Completion> done;
  PhaseReport report;
  uint64_t submitted = 0;
  const uint64_t t0 = NowNanos();
  for (;;) {
    bool more = submitted < o.max_pages && (o.deadline_ns == 0 || NowNanos() < o.deadline_ns);
    while (more && !free_slots.empty() && submitted < o.max_pages) {
      uint32_t slot = free_slots.back();
      free_slots.pop_back();
      uint8_t* buf = &buffers[uint64_t{slot} * ps];
      uint64_t page = next();
      if (o.kind == PageIo::Kind::kWrite) prepare(buf, page);
      page_of[slot] = page;
      started[slot] = NowNanos();
      PageIo io{o.kind, page, 1, buf, slot};
      TS_RETURN_IF_ERROR(queue.Submit({&io, 1}));
      ++submitted;
    }
    if (queue.outstanding() == 0) break;
    done.clear();
    TS_RETURN_IF_ERROR(queue.Reap(&done, 1, 30000).status());
    const uint64_t now = NowNanos();
    for (const Completion& c : done) {
      uint32_t slot = static_cast<uint32_t>(c.user_data);
      if (!c.status.ok()) return c.status.With("page " + std::to_string(page_of[slot]));
      report.latency.Record(now - started[slot]);
      TS_RETURN_IF_ERROR(on_done(&buffers[uint64_t{slot} * ps], page_of[slot]));
      free_slots.push_back(slot);
      ++report.pages;
    }
  }
  report.seconds = static_cast<double>(NowNanos() - t0) / 1e9;
  return report;
}

}  // namespace tessera::bench
