// Evictor: keeps the managed range's local memory under the cache budget.
//
// Two steps, both batched so that a multithreaded program pays one TLB
// shootdown per batch rather than per page:
//  1. Deactivate: the policy picks victims; runs of contiguous ones move
//     (UFFDIO_MOVE, atomic per page) into one staging block. A write racing
//     with the move either lands before it (and travels with the page) or
//     faults after it and waits for the page to come back: none is lost.
//  2. Drain: once the staged pages exceed their share of the budget, the
//     oldest block is drained. A page whose CRC-64 still matches its install
//     is clean and is dropped (the pool's copy, or zeros, is current); a
//     dirty one is written to the pool from its slot. When every slot of the
//     block is done the block is discarded with one madvise.
// A touch on a staged page moves it back (the policy hears it was used); on a
// page whose write is in flight, it copies it back.
//
// Ownership: borrows the context. Thread-safety: none; the pager's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "common/result.h"
#include "vnode/context.h"

namespace tessera::vnode {

struct EvictorOptions {
  uint32_t batch = 64;            // pages per deactivation (<= a staging block)
  uint64_t headroom = 64;         // free pages to keep ahead of faults
  uint64_t inactive_target = 64;  // staged pages to keep before draining
};

class Evictor {
 public:
  // `on_probe_untouched` runs when a prefetch probe leaves staging unused.
  Evictor(PagingContext* ctx, const EvictorOptions& options, std::function<void()> on_probe_untouched)
      : ctx_(ctx), options_(options), on_probe_untouched_(std::move(on_probe_untouched)) {}

  // Deactivates and drains until the budget has its headroom again, or no
  // step can help right now (writes in flight must finish first).
  Status Run();
  // A fault on a kStaged or kWriteback page: puts it back. False: not now
  // (the address space is changing; retry after reading events). The caller
  // reads kProbe before and clears it after.
  Result<bool> Rescue(uint64_t page);
  // The program discarded `page` (madvise, munmap): forget its copies.
  void Discard(uint64_t page);
  // The write tagged `tag` completed.
  Status OnWriteDone(uint64_t tag, const Status& status);
  // Resubmits writes that failed, at most once a second.
  Status RetryFailed(uint64_t now_ns);

 private:
  bool NeedRoom() const;
  Status Deactivate(bool* progress);
  // Moves pages[0..n) (contiguous, resident) into consecutive slots from
  // *slot, advancing it.
  Status MoveRun(const uint64_t* pages, size_t n, uint32_t* slot);
  Status Drain(bool* progress);
  Status DrainSlot(uint32_t slot);
  Status SubmitWrite(uint64_t page, uint32_t slot);

  PagingContext* ctx_;
  EvictorOptions options_;
  std::function<void()> on_probe_untouched_;
  std::vector<uint64_t> victims_;
  struct FailedWrite {
    uint64_t page;
    uint32_t slot;
  };
  std::deque<FailedWrite> failed_;
  uint64_t next_retry_ns_ = 0;
};

}  // namespace tessera::vnode
