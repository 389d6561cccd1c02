#include "vnode/prefetcher.h"

#include <algorithm>

namespace tessera::vnode {

std::optional<int64_t> Prefetcher::Trend() const {
  const size_t have = std::min(recorded_, kHistory);
  for (size_t n = 4; n <= have; n *= 2) {
    // Boyer-Moore majority vote over the newest n deltas, then a count to
    // confirm the candidate really holds a majority.
    int64_t candidate = 0;
    size_t votes = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t d = deltas_[(recorded_ - 1 - i) % kHistory];
      if (votes == 0) candidate = d;
      votes += d == candidate ? 1 : static_cast<size_t>(-1);
    }
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) count += deltas_[(recorded_ - 1 - i) % kHistory] == candidate;
    if (count * 2 > n && candidate != 0) return candidate;
  }
  return std::nullopt;
}

void Prefetcher::OnMiss(uint64_t page, PrefetchPlan* out) {
  if (last_miss_) {
    deltas_[recorded_ % kHistory] = static_cast<int64_t>(page) - static_cast<int64_t>(*last_miss_);
    ++recorded_;
  }
  last_miss_ = page;
  std::optional<int64_t> trend = Trend();
  if (trend && (*trend != stream_delta_ || window_ == 0)) window_ = kMinWindow;  // a new trend gets a chance
  // No trend: plain readahead, a stream along +1 that the probe can extend —
  // for as long as its probes are touched.
  Plan(trend.value_or(1), page, out);
}

void Prefetcher::OnProbeTouched(uint64_t page, PrefetchPlan* out) {
  ++touched_;
  out->pages.clear();
  out->probe.reset();
  if (stream_probe_ != page) return;  // an older stream's probe
  window_ = std::min(std::max(window_ * 2, kMinWindow), max_window_);
  uint64_t from = stream_next_ - static_cast<uint64_t>(stream_delta_);
  Plan(stream_delta_, from, out);
}

void Prefetcher::OnProbeUntouched() {
  ++untouched_;
  window_ /= 2;  // down to nothing: random access gets no readahead
}

void Prefetcher::Plan(int64_t delta, uint64_t from, PrefetchPlan* out) {
  out->pages.clear();
  out->probe.reset();
  int64_t p = static_cast<int64_t>(from);
  for (uint32_t i = 0; i < window_; ++i) {
    p += delta;
    if (p < 0 || static_cast<uint64_t>(p) >= num_pages_) break;
    out->pages.push_back(static_cast<uint64_t>(p));
  }
  stream_delta_ = delta;
  stream_next_ = static_cast<uint64_t>(std::max<int64_t>(p, 0));
  stream_probe_.reset();
  if (!out->pages.empty()) {
    out->probe = out->pages.size() / 2;
    stream_probe_ = out->pages[*out->probe];
    stream_next_ = out->pages.back() + static_cast<uint64_t>(delta);
  }
}

}  // namespace tessera::vnode
