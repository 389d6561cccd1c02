// PagingContext: the state every stage of the pager shares — the managed
// range, its page table, the staging area, the eviction policy, the I/O
// queue to the pool and the counters — and the cache budget's arithmetic.
// The stages (fetcher.h, evictor.h, pager.h) each own their own work and
// meet here, the way the controller's handlers meet in its Context.
//
// Ownership: owned by the Pager; the stages borrow it.
// Thread-safety: only the pager's thread touches it, except `stats`, whose
// members are atomics (and `latency`, under its mutex) for Pager::Stats().
#pragma once

#include <cstdint>
#include <memory>

#include "tessera/client.h"
#include "vnode/counters.h"
#include "vnode/eviction_policy.h"
#include "vnode/page_table.h"
#include "vnode/space.h"
#include "vnode/staging.h"
#include "vnode/uffd.h"

namespace tessera::vnode {

struct PagingContext {
  uint8_t* base = nullptr;
  uint64_t pages = 0;
  size_t page_size = 4096;
  uint64_t zero_crc = 0;
  Space* space = nullptr;
  Uffd* uffd = nullptr;          // the space's, over the managed range
  Uffd* staging_uffd = nullptr;  // the space's, over the staging area
  PageTable* table = nullptr;
  Staging* staging = nullptr;
  EvictionPolicy* policy = nullptr;
  IoQueue* queue = nullptr;
  PagerCounters* stats = nullptr;

  // Budget, in pages of local memory.
  uint64_t budget = 0;
  uint64_t resident = 0;           // pages in kResident
  uint64_t fetches_in_flight = 0;  // each will become resident

  uint8_t* Address(uint64_t page) const { return base + page * page_size; }
  uint64_t used() const { return resident + staging->held_pages() + fetches_in_flight; }
  bool HasRoom() const { return used() < budget; }
  void NoteUsed() {
    uint64_t u = used();
    stats->used_pages.store(u, std::memory_order_relaxed);
    if (u > stats->peak_used_pages.load(std::memory_order_relaxed)) {
      stats->peak_used_pages.store(u, std::memory_order_relaxed);
    }
  }
};

// IoQueue user_data: reads carry (buffer, page), writes (slot, page),
// releases (kZero writes) their page count.
constexpr uint64_t kTagWrite = 1ull << 63;
constexpr uint64_t kTagRelease = 1ull << 62;
constexpr int kTagShift = 40;
constexpr uint64_t kTagPageMask = (1ull << kTagShift) - 1;
inline uint64_t ReadTag(uint32_t buffer, uint64_t page) { return (uint64_t{buffer} << kTagShift) | page; }
inline uint64_t WriteTag(uint32_t slot, uint64_t page) { return kTagWrite | (uint64_t{slot} << kTagShift) | page; }
inline uint64_t TagPage(uint64_t tag) { return tag & kTagPageMask; }
inline uint32_t TagIndex(uint64_t tag) { return static_cast<uint32_t>((tag & ~kTagWrite) >> kTagShift); }
inline uint64_t ReleaseTag(uint32_t pages) { return kTagRelease | pages; }

}  // namespace tessera::vnode
