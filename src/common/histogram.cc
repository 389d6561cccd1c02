#include "common/histogram.h"

#include <algorithm>
#include <bit>

namespace tessera {

int LatencyHistogram::BucketOf(uint64_t v) {
  if (v < (1u << kSubBits)) return static_cast<int>(v);
  int msb = 63 - std::countl_zero(v);
  int shift = msb - kSubBits;
  uint64_t sub = (v >> shift) & ((1u << kSubBits) - 1);
  return ((shift + 1) << kSubBits) + static_cast<int>(sub);
}

uint64_t LatencyHistogram::BucketMid(int b) {
  if (b < (1 << kSubBits)) return static_cast<uint64_t>(b);
  int shift = (b >> kSubBits) - 1;
  uint64_t sub = static_cast<uint64_t>(b & ((1 << kSubBits) - 1));
  uint64_t low = ((1ull << kSubBits) | sub) << shift;
  return low + ((1ull << shift) >> 1);
}

void LatencyHistogram::Record(uint64_t nanos) {
  ++buckets_[BucketOf(nanos)];
  ++count_;
  max_ = std::max(max_, nanos);
}

void LatencyHistogram::Merge(const LatencyHistogram& o) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (p >= 100) return max_;
  uint64_t rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(count_ - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(BucketMid(i), max_);
  }
  return max_;
}

}  // namespace tessera
