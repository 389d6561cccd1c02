// PageTable: what the pager knows about each page of the managed range — one
// explicit state per page (umap's lesson: every transition is a named edge,
// and a page is in exactly one state).
//
//   kZero ──fault──▶ kResident ◀──rescue── kStaged ◀──moved── kEvicting ◀──evict── kResident
//   kRemote ──fault──▶ kFetching ──reply──▶ kResident
//   kStaged ──clean──▶ kRemote/kZero      kStaged ──dirty──▶ kWriteback ──acked──▶ kRemote
//   kEvicting ──not moved──▶ kResident
//   any ──madvise(DONTNEED)/munmap──▶ kZero (kEvicting: once its move is known)
//
// Dirty pages are found by content, not by write-protect faults: every
// installed page's CRC-64 is kept, and at eviction a page whose content still
// has that CRC is clean (its copy in the pool, or zeros, is current). A write
// then costs the program nothing — no second fault, no protection change —
// and a page written back to its old content counts as clean, correctly. The
// price is one CRC per install and per eviction (~0.3 us a page) and a
// 2^-64 chance per written page that a change goes unseen.
//
// The array is one MAP_NORESERVE mapping: a huge managed range costs only the
// entries its touched pages use.
//
// Thread-safety: none; the pager's thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/result.h"

namespace tessera::vnode {

enum class PageState : uint8_t {
  kZero = 0,   // not resident; reads as zeros (never written, or discarded)
  kRemote,     // not resident; the pool holds the content
  kFetching,   // a read from the pool is in flight
  kResident,   // mapped in the managed range
  kStaged,     // moved out to the staging area, still in local memory
  kWriteback,  // in the staging area, its write to the pool in flight
  kEvicting,   // its move to the staging area was asked of the program (remote spaces)
};

const char* PageStateName(PageState s);

struct PageEntry {
  uint64_t crc = 0;          // CRC-64 of the content installed (kResident, kStaged)
  uint32_t slot = 0;         // staging slot (kStaged, kWriteback); fetch buffer (kFetching)
  uint32_t policy_word = 0;  // owned by the eviction policy
  PageState state = PageState::kZero;
  uint8_t flags = 0;         // PageFlag bits
};

enum PageFlag : uint8_t {
  // The pool's copy may be older than the content (a write-back failed
  // after the page came back): write it at eviction whatever its CRC says.
  kForceWrite = 1 << 0,
  // Fetched by the prefetcher and not yet asked for by a fault.
  kPrefetched = 1 << 1,
  // A prefetch stream's probe (prefetcher.h): fetched into staging, so that
  // its first touch is seen.
  kProbe = 1 << 2,
  // Discarded by the program while its move was in flight (kEvicting).
  kDiscarded = 1 << 3,
};

class PageTable {
 public:
  static Result<PageTable> Create(uint64_t pages);
  PageTable(PageTable&& o) noexcept;
  PageTable& operator=(PageTable&&) = delete;
  ~PageTable();

  // The table of a child forked now: resident pages are the child's too
  // (the kernel copied them); every other page that is not zeros is kRemote,
  // for the caller has settled each into the pool (and cloned it) first.
  // A page whose move was in flight may be present in the child all the same
  // (moved after the fork): the child never faults on it, and only the
  // accounting of resident pages misses it.
  Result<PageTable> ForkCopy() const;

  uint64_t size() const { return pages_; }
  PageEntry& operator[](uint64_t page) { return entries_[page]; }
  const PageEntry& operator[](uint64_t page) const { return entries_[page]; }

  // Calls fn(page) once for each page whose entry may differ from kZero, in
  // order, skipping the parts of the table never written (the kernel tells,
  // in /proc/self/pagemap). A fork or a join then costs what the program
  // touched, not the size of its range: 8 GiB is 2 M entries, ~20 ms a scan.
  template <typename Fn>
  void ForEachTouched(Fn&& fn) const {
    for (auto [first, end] : TouchedRuns()) {
      for (uint64_t p = first; p < end; ++p) fn(p);
    }
  }

 private:
  PageTable(PageEntry* entries, uint64_t pages) : entries_(entries), pages_(pages) {}
  // [first, end) runs of the entries on table memory ever written.
  std::vector<std::pair<uint64_t, uint64_t>> TouchedRuns() const;
  PageEntry* entries_;
  uint64_t pages_;
};

// CRC-64 of one page's content, and of a page of zeros.
uint64_t PageCrc(const void* data, size_t len);
uint64_t ZeroPageCrc(size_t len);

}  // namespace tessera::vnode
