// LatencyHistogram: records durations in nanoseconds into log-linear buckets
// (~1.5% resolution) and answers percentiles. Used by benchmarks and the
// workload summary; recording is O(1) and allocation-free.
//
// Thread-safety: not thread-safe; give each thread its own and Merge().
#pragma once

#include <array>
#include <cstdint>

namespace tessera {

class LatencyHistogram {
 public:
  void Record(uint64_t nanos);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // p in [0, 100]; returns 0 for an empty histogram.
  uint64_t Percentile(double p) const;
  uint64_t max() const { return max_; }

 private:
  // 64 sub-buckets per power of two covers 1 ns .. 2^63 ns.
  static constexpr int kSubBits = 6;
  static constexpr int kBuckets = 64 << kSubBits;
  static int BucketOf(uint64_t v);
  static uint64_t BucketMid(int b);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace tessera
