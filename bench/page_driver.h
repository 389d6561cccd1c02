// DrivePages: keeps `depth` single-page I/Os in flight on an IoQueue, from a
// ring of page buffers, until `max_pages` are done or the deadline passes,
// timing each page from submit to completion. The demo workload (sequential,
// verified) and the page benchmark (random, timed) both run on it.
#pragma once

#include <cstdint>
#include <functional>

#include "common/histogram.h"
#include "tessera/client.h"

namespace tessera::bench {

struct DriveOptions {
  PageIo::Kind kind = PageIo::Kind::kRead;
  uint32_t depth = 1;
  uint64_t max_pages = 0;
  uint64_t deadline_ns = 0;  // NowNanos clock; 0: none
};

struct PhaseReport {
  uint64_t pages = 0;
  double seconds = 0;
  LatencyHistogram latency;
  double pages_per_second() const { return seconds > 0 ? static_cast<double>(pages) / seconds : 0; }
};

using NextPage = std::function<uint64_t()>;
// Fills the buffer of a page about to be written (unused for reads).
using PreparePage = std::function<void(uint8_t* buf, uint64_t page)>;
// Sees each completed page; an error stops the run.
using PageDone = std::function<Status(const uint8_t* buf, uint64_t page)>;

Result<PhaseReport> DrivePages(Region& region, IoQueue& queue, const DriveOptions& options, const NextPage& next,
                               const PreparePage& prepare, const PageDone& done);

}  // namespace tessera::bench
