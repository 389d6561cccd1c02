// ManagedHeap: the allocator the preload shim puts behind malloc and
// anonymous mmap, over the managed range a vnode::Pager serves.
//
// Small requests (up to 16 KiB) come from size classes: spans of a few pages
// cut into equal objects, with a per-span free list. Larger requests, and
// mmap, get whole pages. All bookkeeping lives outside the managed range, in
// its own mapping: asking what a pointer is (free, malloc_usable_size) never
// touches — never faults in — the program's memory. Freed objects do hold
// their free-list link, in memory that is about to be reused anyway.
//
// Memory goes back when it is free: a span with no live object, or pages a
// program frees or unmaps, are discarded at once (`discard`, madvise
// DONTNEED), which drops their local pages and tells the pager that their
// content is zeros. Free pages are therefore always zero, so mmap and large
// calloc need no memset.
//
// Ownership: owns its bookkeeping mapping; borrows the range.
// Thread-safety: thread-safe (a lock per size class, one for pages, taken in
// that order). A child forked without exec keeps the heap: the shim takes
// every lock around fork (LockForFork), so the child's copy is consistent.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/result.h"

namespace tessera::preload {

// Bytes handed out, now and at most; a heap keeps its own or counts into
// storage it is given (the shim's shared report).
struct HeapCounters {
  std::atomic<uint64_t> live{0};
  std::atomic<uint64_t> peak{0};
};

class ManagedHeap {
 public:
  using DiscardFn = void (*)(void* addr, size_t len);
  static constexpr size_t kPage = 4096;
  static constexpr size_t kMaxSmall = 16384;

  static Result<std::unique_ptr<ManagedHeap>> Create(void* base, size_t bytes, DiscardFn discard,
                                                     HeapCounters* counters = nullptr);
  ~ManagedHeap();

  uintptr_t start() const { return base_; }
  uintptr_t end() const { return base_ + bytes_; }
  bool Owns(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p);
    return a >= base_ && a < base_ + bytes_;
  }
  // nullptr when the range is full.
  void* Malloc(size_t n);
  // `align` a power of two.
  void* Memalign(size_t align, size_t n);
  void Free(void* p);
  size_t UsableSize(const void* p) const;
  // Makes the page span that starts at `p` (a large allocation or a mapping)
  // hold `n` bytes without moving it: realloc and mremap then copy nothing.
  // A shrunk tail is discarded and freed. False, with nothing changed, when
  // `p` starts no such span, `n` needs no pages, or the pages after it are in use.
  bool Resize(void* p, size_t n);
  // Zeroed, page-aligned pages (anonymous mmap).
  void* MapPages(size_t bytes);
  // Frees the pages of [p, p+len) that MapPages handed out (munmap, also of
  // part of a mapping). False if some page in the range was not mapped so.
  bool UnmapPages(void* p, size_t len);

  // Around fork(): takes every lock (the forking thread then holds the
  // heap consistent), and gives them back in the parent and in the child.
  void LockForFork();
  void UnlockAfterFork();

  uint64_t live_bytes() const { return counters_.live.load(std::memory_order_relaxed); }
  uint64_t peak_bytes() const { return counters_.peak.load(std::memory_order_relaxed); }

 private:
  // Bookkeeping is a zero-filled mapping, so every field's zero means
  // "nothing": links hold page + 1, 0 for none.
  static constexpr uint32_t kNone = 0;
  enum class State : uint8_t { kUnused = 0, kFree, kLarge, kSmall };
  struct PageMeta {
    uint32_t first;      // first page of the span this page is in (at least
                         // at a span's first and last pages; every page of
                         // small spans and of mapped ones)
    uint32_t pages;      // at a span's first page: its length
    uint32_t next;       // at a span's first page: list links (page + 1)
    uint32_t prev;
    uint32_t free_head;  // small span: 1 + index of the first free object
    uint16_t free_count; // small span: objects not in use
    uint16_t bump;       // small span: objects ever handed out
    State state;
    uint8_t cls;         // small span: size class; large span: 1 if mapped
  };
  struct SizeClass {
    uint32_t size = 0;
    uint32_t span_pages = 0;
    uint16_t objects = 0;
    std::mutex mu;
    uint32_t partial = kNone;  // spans with a free object (page + 1)
  };
  static constexpr size_t kClasses = 36;

  ManagedHeap(uintptr_t base, size_t bytes, PageMeta* meta, size_t meta_bytes, DiscardFn discard,
              HeapCounters* counters);
  static int ClassOf(size_t n);
  uint32_t PageOf(const void* p) const { return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) - base_) / kPage); }
  void* AddressOf(uint32_t page) const { return reinterpret_cast<void*>(base_ + size_t{page} * kPage); }

  void* SmallAlloc(int cls);
  void SmallFree(uint32_t span, void* p);
  // Page spans; pages_mu_ held.
  uint32_t TakeSpan(uint32_t pages);
  // Adds the `extra` pages after [first, end) to nothing else's use: free
  // ones, or the untouched top. False if they are not all available.
  bool TakeAfter(uint32_t end, uint32_t extra);
  void ReleaseSpan(uint32_t first, uint32_t pages);
  void MarkSpan(uint32_t first, uint32_t pages, State state, bool every_page);
  int BinOf(uint32_t pages) const;
  void ListPush(uint32_t* head, uint32_t first);
  void ListRemove(uint32_t* head, uint32_t first);
  void Account(int64_t delta);

  const uintptr_t base_;
  const size_t bytes_;
  const uint32_t total_pages_;
  PageMeta* const meta_;
  const size_t meta_bytes_;
  const DiscardFn discard_;
  std::array<SizeClass, kClasses> classes_;
  std::mutex pages_mu_;
  uint32_t top_ = 0;  // pages below have been handed out at least once; guarded by pages_mu_
  // Free spans by length: bins of exact length 1..kBins-1, and kBins-1 for
  // anything longer (first fit). Guarded by pages_mu_.
  static constexpr int kBins = 129;
  std::array<uint32_t, kBins> bins_{};
  HeapCounters own_counters_;
  HeapCounters& counters_;
};

}  // namespace tessera::preload
