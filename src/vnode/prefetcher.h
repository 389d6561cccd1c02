// Prefetcher: reads pages ahead of the program's faults (Leap, ATC'20).
//
// It keeps the deltas between recent demand misses in a ring and looks for a
// majority delta by Boyer-Moore vote over a window that grows (4, 8, 16, 32
// deltas) until a majority appears. With a trend of delta D it fetches the
// next `window` pages along it; without one it falls back to plain
// readahead (the next few pages). Each batch goes out as a stream with one
// probe page in its middle, installed staged (staging.h) rather than mapped:
// touching it costs a local fault, which is how the pager learns that the
// stream is being used — the CPU's accessed bits are out of a user-space
// pager's reach. A touched probe continues the stream with a doubled window
// (async readahead); a probe that leaves staging untouched halves it, down
// to no readahead at all for random access, until a trend shows again. The
// probes are also the sample behind the reported accuracy.
//
// Thread-safety: none; the pager's thread owns it. No I/O: it only plans.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace tessera::vnode {

struct PrefetchPlan {
  std::vector<uint64_t> pages;  // in order along the stream
  std::optional<size_t> probe;  // index into pages of the probe
};

class Prefetcher {
 public:
  Prefetcher(uint64_t num_pages, uint32_t max_window) : num_pages_(num_pages), max_window_(max_window) {}

  // A demand miss at `page` (a fault that went to the pool).
  void OnMiss(uint64_t page, PrefetchPlan* out);
  // The page the caller made the plan's probe (the suggested one, or a later
  // one when that was not worth fetching), or none.
  void ProbeChosen(std::optional<uint64_t> page) { stream_probe_ = page; }
  // The probe at `page` was touched.
  void OnProbeTouched(uint64_t page, PrefetchPlan* out);
  // A probe left the cache untouched.
  void OnProbeUntouched();

  // Probes touched / probes resolved: the sampled share of prefetched pages
  // the program used.
  uint64_t probes_touched() const { return touched_; }
  uint64_t probes_untouched() const { return untouched_; }

  // The majority delta of the last n deltas recorded, if any (for tests).
  std::optional<int64_t> Trend() const;

 private:
  static constexpr size_t kHistory = 32;
  static constexpr uint32_t kMinWindow = 4;
  void Plan(int64_t delta, uint64_t from, PrefetchPlan* out);

  const uint64_t num_pages_;
  const uint32_t max_window_;
  std::array<int64_t, kHistory> deltas_{};
  size_t recorded_ = 0;  // deltas ever recorded
  std::optional<uint64_t> last_miss_;
  uint32_t window_ = kMinWindow;
  // The current stream: its delta, the next page along it, and its probe.
  int64_t stream_delta_ = 1;
  uint64_t stream_next_ = 0;
  std::optional<uint64_t> stream_probe_;
  uint64_t touched_ = 0;
  uint64_t untouched_ = 0;
};

}  // namespace tessera::vnode
