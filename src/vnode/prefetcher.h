// Prefetcher: reads pages ahead of the program's faults.
//
// Programs walk several regions at once — python's collector visits objects
// of each size class in pools of their own, a join reads two tables — so
// consecutive misses often belong to different streams, and one global
// "delta between misses" (Leap, ATC'20) sees noise. So streams are tracked
// apart, in a small table: a miss within kReach pages of a stream's last miss
// continues it (its step is ±1, or the distance when two steps in a row
// agree); any other miss opens a stream that reads nothing yet: one miss
// shows no locality, a second one near it does. Where no stream is near,
// Leap's majority vote over the deltas of all recent misses still finds a
// global stride (4, 8, 16, 32 deltas) and runs it as a stream.
//
// Each batch goes out with one probe page in its middle, installed staged
// (staging.h) rather than mapped: touching it costs a local fault, which is
// how the pager learns that the stream is being used — the CPU's accessed
// bits are out of a user-space pager's reach. A touched probe continues its
// stream with a doubled window (async readahead); a probe that leaves
// staging untouched halves it, down to nothing until misses continue the
// stream again. The probes are also the sample behind the reported accuracy.
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
  // The page the caller made the last plan's probe (the suggested one, or a
  // later one when that was not worth fetching), or none.
  void ProbeChosen(std::optional<uint64_t> page);
  // The probe at `page` was touched.
  void OnProbeTouched(uint64_t page, PrefetchPlan* out);
  // The probe at `page` left the cache untouched.
  void OnProbeUntouched(uint64_t page);

  // Probes touched / probes resolved: the sampled share of prefetched pages
  // the program used.
  uint64_t probes_touched() const { return touched_; }
  uint64_t probes_untouched() const { return untouched_; }

  // The majority delta of the last n deltas recorded, if any (for tests).
  std::optional<int64_t> Trend() const;

  static constexpr uint64_t kReach = 8;  // pages: how far a miss may continue a stream
  static constexpr size_t kStreams = 16;

 private:
  static constexpr size_t kHistory = 32;
  static constexpr uint32_t kMinWindow = 4;
  struct Stream {
    bool live = false;
    uint64_t last = 0;      // its latest miss
    int64_t last_step = 0;  // the distance from the miss before; 0: none yet
    int64_t delta = 0;      // along which it reads
    uint32_t window = 0;
    uint64_t next = 0;      // the first page after what it has asked for
    std::optional<uint64_t> probe;
    uint64_t used = 0;      // when it was last continued (the table's clock)
  };
  // The live stream `page` continues, if any.
  Stream* Near(uint64_t page);
  Stream& Open(uint64_t page);
  Stream* WithProbe(uint64_t page);
  void Plan(Stream& s, uint64_t from, PrefetchPlan* out);

  const uint64_t num_pages_;
  const uint32_t max_window_;
  std::array<int64_t, kHistory> deltas_{};
  size_t recorded_ = 0;  // deltas ever recorded
  std::optional<uint64_t> last_miss_;
  std::array<Stream, kStreams> streams_{};
  Stream* planned_ = nullptr;       // the one the last plan came from
  uint64_t clock_ = 0;
  uint64_t touched_ = 0;
  uint64_t untouched_ = 0;
};

}  // namespace tessera::vnode
