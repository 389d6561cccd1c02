#include "preload/heap.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

namespace tessera::preload {
namespace {

// 16..128 by 16, then four classes per doubling up to 16 KiB.
constexpr uint32_t ClassSize(size_t i) {
  if (i < 8) return static_cast<uint32_t>(16 * (i + 1));
  size_t band = (i - 8) / 4, step = (i - 8) % 4;
  uint32_t base = 128u << band;
  return base + static_cast<uint32_t>(step + 1) * (base / 4);
}

}  // namespace

int ManagedHeap::ClassOf(size_t n) {
  if (n <= 128) return n == 0 ? 0 : static_cast<int>((n + 15) / 16 - 1);
  int k = 63 - __builtin_clzll(n - 1);  // 2^k < n <= 2^(k+1)
  size_t base = size_t{1} << k, step = base / 4;
  return 8 + (k - 7) * 4 + static_cast<int>((n - base + step - 1) / step) - 1;
}

Result<std::unique_ptr<ManagedHeap>> ManagedHeap::Create(void* base, size_t bytes, DiscardFn discard,
                                                         HeapCounters* counters) {
  size_t pages = bytes / kPage;
  if (pages == 0 || pages >= (1ull << 32) - 2) return InvalidArgument("managed heap size out of range");
  size_t meta_bytes = pages * sizeof(PageMeta);
  // A raw system call: in the shim, mmap itself is ours.
  long m = syscall(SYS_mmap, nullptr, meta_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (m == -1) return Status::FromErrno(errno, "mmap heap bookkeeping");
  return std::unique_ptr<ManagedHeap>(new ManagedHeap(reinterpret_cast<uintptr_t>(base), pages * kPage,
                                                      reinterpret_cast<PageMeta*>(m), meta_bytes, discard, counters));
}

ManagedHeap::ManagedHeap(uintptr_t base, size_t bytes, PageMeta* meta, size_t meta_bytes, DiscardFn discard,
                         HeapCounters* counters)
    : base_(base),
      bytes_(bytes),
      total_pages_(static_cast<uint32_t>(bytes / kPage)),
      meta_(meta),
      meta_bytes_(meta_bytes),
      discard_(discard),
      counters_(counters != nullptr ? *counters : own_counters_) {
  for (size_t i = 0; i < kClasses; ++i) {
    SizeClass& c = classes_[i];
    c.size = ClassSize(i);
    c.span_pages = std::max<uint32_t>(4, (8 * c.size + kPage - 1) / kPage);
    c.objects = static_cast<uint16_t>(c.span_pages * kPage / c.size);
  }
}

ManagedHeap::~ManagedHeap() { syscall(SYS_munmap, meta_, meta_bytes_); }

void ManagedHeap::Account(int64_t delta) {
  uint64_t now = counters_.live.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed) +
                 static_cast<uint64_t>(delta);
  uint64_t peak = counters_.peak.load(std::memory_order_relaxed);
  while (delta > 0 && now > peak && !counters_.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void* ManagedHeap::Malloc(size_t n) {
  if (n <= kMaxSmall) return SmallAlloc(ClassOf(n));
  if (n > bytes_) return nullptr;
  uint32_t pages = static_cast<uint32_t>((n + kPage - 1) / kPage);
  std::lock_guard lk(pages_mu_);
  uint32_t first = TakeSpan(pages);
  if (first == kNone) return nullptr;
  MarkSpan(first - 1, pages, State::kLarge, false);
  Account(static_cast<int64_t>(pages * kPage));
  return AddressOf(first - 1);
}

void* ManagedHeap::Memalign(size_t align, size_t n) {
  if (align <= 16) return Malloc(n);
  if (align <= kPage && n <= kMaxSmall) {
    // Power-of-two classes sit at multiples of their size (up to a page)
    // from a page-aligned span.
    size_t size = std::bit_ceil(std::max(n, align));
    if (size <= kMaxSmall) return SmallAlloc(ClassOf(size));
  }
  if (n > bytes_ || align > bytes_) return nullptr;
  uint32_t pages = static_cast<uint32_t>((n + kPage - 1) / kPage);
  uint32_t extra = static_cast<uint32_t>(std::max<size_t>(align / kPage, 1) - 1);
  std::lock_guard lk(pages_mu_);
  uint32_t span = TakeSpan(pages + extra);
  if (span == kNone) return nullptr;
  uint32_t first = span - 1;
  uintptr_t addr = reinterpret_cast<uintptr_t>(AddressOf(first));
  uint32_t aligned = first + static_cast<uint32_t>(((addr + align - 1) / align * align - addr) / kPage);
  // The pages around the aligned run were free and are zero: back they go.
  if (aligned > first) ReleaseSpan(first, aligned - first);
  if (aligned + pages < first + pages + extra) ReleaseSpan(aligned + pages, first + pages + extra - aligned - pages);
  MarkSpan(aligned, pages, State::kLarge, false);
  Account(static_cast<int64_t>(pages * kPage));
  return AddressOf(aligned);
}

void* ManagedHeap::SmallAlloc(int cls) {
  SizeClass& c = classes_[static_cast<size_t>(cls)];
  std::lock_guard lk(c.mu);
  if (c.partial == kNone) {
    uint32_t span;
    {
      std::lock_guard plk(pages_mu_);
      span = TakeSpan(c.span_pages);
      if (span == kNone) return nullptr;
      MarkSpan(span - 1, c.span_pages, State::kSmall, true);
    }
    PageMeta& m = meta_[span - 1];
    m.cls = static_cast<uint8_t>(cls);
    m.free_count = c.objects;
    m.bump = 0;
    m.free_head = 0;
    ListPush(&c.partial, span - 1);
  }
  uint32_t first = c.partial - 1;
  PageMeta& m = meta_[first];
  auto* span_base = static_cast<uint8_t*>(AddressOf(first));
  uint32_t index;
  if (m.free_head != 0) {
    index = m.free_head - 1;
    std::memcpy(&m.free_head, span_base + size_t{index} * c.size, sizeof m.free_head);
  } else {
    index = m.bump++;
  }
  if (--m.free_count == 0) ListRemove(&c.partial, first);
  Account(c.size);
  return span_base + size_t{index} * c.size;
}

void ManagedHeap::Free(void* p) {
  if (p == nullptr) return;
  uint32_t page = PageOf(p);
  const PageMeta& pm = meta_[page];
  if (pm.state == State::kSmall) return SmallFree(pm.first, p);
  if (pm.state != State::kLarge || pm.first != page || pm.pages == 0) return;  // not a pointer we handed out
  uint32_t pages = pm.pages;
  Account(-static_cast<int64_t>(pages * kPage));
  discard_(p, pages * kPage);  // before anyone else can have the pages
  std::lock_guard lk(pages_mu_);
  ReleaseSpan(page, pages);
}

void ManagedHeap::SmallFree(uint32_t first, void* p) {
  SizeClass& c = classes_[meta_[first].cls];
  auto* span_base = static_cast<uint8_t*>(AddressOf(first));
  uint32_t index = static_cast<uint32_t>((static_cast<uint8_t*>(p) - span_base) / c.size);
  {
    std::lock_guard lk(c.mu);
    PageMeta& m = meta_[first];
    std::memcpy(span_base + size_t{index} * c.size, &m.free_head, sizeof m.free_head);
    m.free_head = index + 1;
    Account(-static_cast<int64_t>(c.size));
    if (++m.free_count == 1) ListPush(&c.partial, first);
    if (m.free_count < c.objects) return;
    // Every object is free: the span leaves the class (unreachable to
    // others from here) and goes back to the pages.
    ListRemove(&c.partial, first);
  }
  discard_(span_base, c.span_pages * kPage);
  std::lock_guard lk(pages_mu_);
  ReleaseSpan(first, c.span_pages);
}

size_t ManagedHeap::UsableSize(const void* p) const {
  if (p == nullptr) return 0;
  const PageMeta& pm = meta_[PageOf(p)];
  if (pm.state == State::kSmall) return classes_[meta_[pm.first].cls].size;
  if (pm.state == State::kLarge) return size_t{pm.pages} * kPage;
  return 0;
}

bool ManagedHeap::Resize(void* p, size_t n) {
  if (!Owns(p) || n == 0 || n > bytes_) return false;
  const uint32_t first = PageOf(p), want = static_cast<uint32_t>((n + kPage - 1) / kPage);
  uint32_t have;
  {
    std::lock_guard lk(pages_mu_);
    const PageMeta& m = meta_[first];
    if (m.state != State::kLarge || m.first != first || m.pages == 0 || AddressOf(first) != p) return false;
    have = m.pages;
    const uint8_t mapped = m.cls;
    if (want > have && !TakeAfter(first + have, want - have)) return false;
    if (want < have) {
      for (uint32_t k = first + want; k < first + have; ++k) meta_[k].state = State::kUnused;  // no lookup may hit it now
    }
    MarkSpan(first, want, State::kLarge, mapped == 1);
    meta_[first].cls = mapped;
  }
  Account((static_cast<int64_t>(want) - have) * static_cast<int64_t>(kPage));
  if (want >= have) return true;
  // The tail, out of the span and in nobody's hands: discard, then free it.
  discard_(AddressOf(first + want), size_t{have - want} * kPage);
  std::lock_guard lk(pages_mu_);
  ReleaseSpan(first + want, have - want);
  return true;
}

void* ManagedHeap::MapPages(size_t bytes) {
  if (bytes == 0 || bytes > bytes_) return nullptr;
  uint32_t pages = static_cast<uint32_t>((bytes + kPage - 1) / kPage);
  std::lock_guard lk(pages_mu_);
  uint32_t span = TakeSpan(pages);
  if (span == kNone) return nullptr;
  MarkSpan(span - 1, pages, State::kLarge, true);
  meta_[span - 1].cls = 1;
  Account(static_cast<int64_t>(pages * kPage));
  return AddressOf(span - 1);
}

bool ManagedHeap::UnmapPages(void* p, size_t len) {
  if (!Owns(p) || len == 0 || len > bytes_) return false;
  uint32_t lo = PageOf(p), hi = static_cast<uint32_t>(std::min<uint64_t>(
                                 lo + (len + kPage - 1) / kPage, total_pages_));
  {
    std::lock_guard lk(pages_mu_);
    for (uint32_t i = lo; i < hi;) {  // all of it must be mapped pages
      const PageMeta& head = meta_[meta_[i].first];
      if (meta_[i].state != State::kLarge || head.cls != 1) return false;
      i = meta_[i].first + head.pages;
    }
  }
  while (lo < hi) {
    // Take a piece out of its span under the lock; discard and free it
    // outside (a discard waits for the pager).
    uint32_t a, b;
    {
      std::lock_guard lk(pages_mu_);
      uint32_t first = meta_[lo].first, end = first + meta_[first].pages;
      a = lo;
      b = std::min(end, hi);
      if (first < a) {
        MarkSpan(first, a - first, State::kLarge, true);
        meta_[first].cls = 1;
      }
      if (b < end) {
        MarkSpan(b, end - b, State::kLarge, true);
        meta_[b].cls = 1;
      }
      for (uint32_t k = a; k < b; ++k) meta_[k].state = State::kUnused;  // no lookup may hit it now
    }
    Account(-static_cast<int64_t>(size_t{b - a} * kPage));
    discard_(AddressOf(a), size_t{b - a} * kPage);
    {
      std::lock_guard lk(pages_mu_);
      ReleaseSpan(a, b - a);
    }
    lo = b;
  }
  return true;
}

void ManagedHeap::MarkSpan(uint32_t first, uint32_t pages, State state, bool every_page) {
  PageMeta& m = meta_[first];
  m.first = first;
  m.pages = pages;
  m.state = state;
  m.cls = 0;
  if (every_page) {
    for (uint32_t i = first + 1; i < first + pages; ++i) meta_[i] = PageMeta{.first = first, .state = state};
  } else if (pages > 1) {
    meta_[first + pages - 1] = PageMeta{.first = first, .state = state};
  }
}

int ManagedHeap::BinOf(uint32_t pages) const { return static_cast<int>(std::min<uint32_t>(pages, kBins - 1)); }

void ManagedHeap::ListPush(uint32_t* head, uint32_t first) {
  PageMeta& m = meta_[first];
  m.prev = kNone;
  m.next = *head;
  if (*head != kNone) meta_[*head - 1].prev = first + 1;
  *head = first + 1;
}

void ManagedHeap::ListRemove(uint32_t* head, uint32_t first) {
  PageMeta& m = meta_[first];
  if (m.prev != kNone) {
    meta_[m.prev - 1].next = m.next;
  } else {
    *head = m.next;
  }
  if (m.next != kNone) meta_[m.next - 1].prev = m.prev;
  m.next = m.prev = kNone;
}

uint32_t ManagedHeap::TakeSpan(uint32_t pages) {
  for (int b = BinOf(pages); b < kBins; ++b) {
    for (uint32_t link = bins_[static_cast<size_t>(b)]; link != kNone; link = meta_[link - 1].next) {
      uint32_t first = link - 1, have = meta_[first].pages;
      if (have < pages) continue;  // only in the last, mixed bin
      ListRemove(&bins_[static_cast<size_t>(b)], first);
      if (have > pages) {
        MarkSpan(first + pages, have - pages, State::kFree, false);
        ListPush(&bins_[static_cast<size_t>(BinOf(have - pages))], first + pages);
      }
      return first + 1;
    }
  }
  if (total_pages_ - top_ < pages) return kNone;
  top_ += pages;
  return top_ - pages + 1;
}

bool ManagedHeap::TakeAfter(uint32_t end, uint32_t extra) {
  if (end == top_) {
    if (total_pages_ - top_ < extra) return false;
    top_ += extra;
    return true;
  }
  // Free spans never touch the top (ReleaseSpan sinks them into it), so
  // what follows `end` must be one free span long enough.
  const PageMeta& next = meta_[end];
  if (end > top_ || next.state != State::kFree || next.first != end || next.pages < extra) return false;
  const uint32_t more = next.pages;
  ListRemove(&bins_[static_cast<size_t>(BinOf(more))], end);
  meta_[end] = PageMeta{};
  if (more > extra) {
    MarkSpan(end + extra, more - extra, State::kFree, false);
    ListPush(&bins_[static_cast<size_t>(BinOf(more - extra))], end + extra);
  }
  return true;
}

void ManagedHeap::ReleaseSpan(uint32_t first, uint32_t pages) {
  // Merge with free neighbours, or sink into the untouched top.
  if (first > 0 && meta_[first - 1].state == State::kFree) {
    uint32_t prev = meta_[first - 1].first;
    ListRemove(&bins_[static_cast<size_t>(BinOf(meta_[prev].pages))], prev);
    pages += first - prev;
    first = prev;
  }
  uint32_t end = first + pages;
  if (end < top_ && meta_[end].state == State::kFree && meta_[end].first == end) {
    uint32_t more = meta_[end].pages;
    ListRemove(&bins_[static_cast<size_t>(BinOf(more))], end);
    pages += more;
    end += more;
  }
  if (end == top_) {
    for (uint32_t i : {first, end - 1}) meta_[i] = PageMeta{};
    top_ = first;
    return;
  }
  MarkSpan(first, pages, State::kFree, false);
  ListPush(&bins_[static_cast<size_t>(BinOf(pages))], first);
}

void ManagedHeap::LockForFork() {
  for (SizeClass& c : classes_) c.mu.lock();
  pages_mu_.lock();
}

void ManagedHeap::UnlockAfterFork() {
  pages_mu_.unlock();
  for (SizeClass& c : classes_) c.mu.unlock();
}

}  // namespace tessera::preload
