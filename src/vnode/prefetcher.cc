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

namespace {

// A stream of stride `delta` (more than one page apart) takes a step of
// `step` pages in whole strides.
bool InStrides(int64_t delta, int64_t step) { return (delta > 1 || delta < -1) && step % delta == 0; }

// How many of the stream's steps from `last` reach `page` (0: none, or
// the other way). A stride counts in strides, a dense stream in pages.
uint64_t Steps(int64_t delta, uint64_t last, uint64_t page) {
  const int64_t step = static_cast<int64_t>(page) - static_cast<int64_t>(last);
  if (step == 0 || (delta != 0 && (step > 0) != (delta > 0))) return 0;
  if (delta > 1 || delta < -1) return InStrides(delta, step) ? static_cast<uint64_t>(step / delta) : 0;
  return static_cast<uint64_t>(step > 0 ? step : -step);
}

}  // namespace

Prefetcher::Stream* Prefetcher::Near(uint64_t page) {
  Stream* best = nullptr;
  uint64_t best_steps = UINT64_MAX;
  for (Stream& s : streams_) {
    if (!s.live) continue;
    if (s.last == page) return &s;  // the same miss again (evicted since)
    // Beyond what it has read ahead counts from there.
    const uint64_t ahead = s.next != 0 ? Steps(s.delta, s.last, s.next) : 0;
    const uint64_t steps = Steps(s.delta, s.last, page);
    if (steps != 0 && steps <= ahead + kReach && steps < best_steps) {
      best = &s;
      best_steps = steps;
    }
  }
  return best;
}

Prefetcher::Stream& Prefetcher::Open(uint64_t page) {
  Stream* victim = &streams_[0];
  for (Stream& s : streams_) {
    if (!s.live) {
      victim = &s;
      break;
    }
    if (s.used < victim->used) victim = &s;
  }
  *victim = Stream{.live = true, .last = page, .used = ++clock_};
  return *victim;
}

Prefetcher::Stream* Prefetcher::WithProbe(uint64_t page) {
  for (Stream& s : streams_) {
    if (s.live && s.probe == page) return &s;
  }
  return nullptr;
}

void Prefetcher::OnMiss(uint64_t page, PrefetchPlan* out) {
  out->pages.clear();
  out->probe.reset();
  planned_ = nullptr;
  if (last_miss_) {
    deltas_[recorded_ % kHistory] = static_cast<int64_t>(page) - static_cast<int64_t>(*last_miss_);
    ++recorded_;
  }
  last_miss_ = page;
  if (Stream* s = Near(page)) {
    s->used = ++clock_;
    const int64_t step = static_cast<int64_t>(page) - static_cast<int64_t>(s->last);
    if (step == 0) return;
    // A stride goes on, and two equal steps in a row make one; otherwise
    // pages one by one (a dense stream whose misses skip pages read ahead
    // or still resident).
    if (!InStrides(s->delta, step)) s->delta = step == s->last_step ? step : (step > 0 ? 1 : -1);
    s->last_step = step;
    s->last = page;
    s->window = std::max(s->window, kMinWindow);  // misses that continue it earn it readahead again
    return Plan(*s, page, out);
  }
  std::optional<int64_t> trend = Trend();
  Stream& s = Open(page);
  if (!trend) return;  // one miss shows nothing yet
  s.delta = *trend;
  s.last_step = *trend;
  s.window = kMinWindow;
  Plan(s, page, out);
}

void Prefetcher::ProbeChosen(std::optional<uint64_t> page) {
  if (planned_ != nullptr) planned_->probe = page;
}

void Prefetcher::OnProbeTouched(uint64_t page, PrefetchPlan* out) {
  ++touched_;
  out->pages.clear();
  out->probe.reset();
  planned_ = nullptr;
  Stream* s = WithProbe(page);
  if (s == nullptr) return;  // a stream since replaced, or planned anew
  s->window = std::min(std::max(s->window * 2, kMinWindow), max_window_);
  s->used = ++clock_;
  Plan(*s, s->next - static_cast<uint64_t>(s->delta), out);
}

void Prefetcher::OnProbeUntouched(uint64_t page) {
  ++untouched_;
  if (Stream* s = WithProbe(page)) {
    s->window /= 2;  // down to nothing: what it read went unused
    s->probe.reset();
  }
}

void Prefetcher::Plan(Stream& s, uint64_t from, PrefetchPlan* out) {
  out->pages.clear();
  out->probe.reset();
  planned_ = &s;
  s.probe.reset();
  int64_t p = static_cast<int64_t>(from);
  for (uint32_t i = 0; i < s.window; ++i) {
    p += s.delta;
    if (p < 0 || static_cast<uint64_t>(p) >= num_pages_) break;
    out->pages.push_back(static_cast<uint64_t>(p));
  }
  s.next = static_cast<uint64_t>(std::max<int64_t>(p, 0));
  if (!out->pages.empty()) {
    out->probe = out->pages.size() / 2;
    s.probe = out->pages[*out->probe];
    s.next = out->pages.back() + static_cast<uint64_t>(s.delta);
  }
}

}  // namespace tessera::vnode
