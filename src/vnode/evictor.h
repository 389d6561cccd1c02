// Evictor: keeps the managed range's local memory under the cache budget.
//
// Two steps, both batched so that a multithreaded program pays one TLB
// shootdown per batch rather than per page:
//  1. Deactivate: the policy picks victims; runs of contiguous ones move
//     (UFFDIO_MOVE, atomic per page) into one staging block. A write racing
//     with the move either lands before it (and travels with the page) or
//     faults after it and waits for the page to come back: none is lost.
//     In a remote space the program's helper thread makes the moves (the
//     kernel allows them only inside the process): until it answers the
//     pages are kEvicting, and a fault on one waits for the answer.
//  2. Drain: once the staged pages exceed their share of the budget, the
//     oldest block is drained: its staged pages are copied out of the space
//     into our own "shadow" of the staging area (one call), and the block's
//     memory is dropped with one madvise. A page whose CRC-64 still matches
//     its install is clean (the pool's copy, or zeros, is current); a dirty
//     one is written to the pool from its shadow copy.
// A touch on a staged page moves it back (the policy hears it was used); on a
// page whose write is in flight, it copies the shadow back in.
//
// Ownership: borrows the context. Thread-safety: none; the pager's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>
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
  // `on_probe_untouched` runs when a prefetch probe (the page) leaves staging unused.
  Evictor(PagingContext* ctx, const EvictorOptions& options, std::function<void(uint64_t page)> on_probe_untouched);
  ~Evictor();
  Evictor(const Evictor&) = delete;
  Evictor& operator=(const Evictor&) = delete;

  // Deactivates and drains until the budget has its headroom again, or no
  // step can help right now (writes in flight must finish first).
  Status Run();
  // A fault on a kStaged or kWriteback page: puts it back. False: not now
  // (the address space is changing; retry after reading events). The caller
  // reads kProbe before and clears it after.
  Result<bool> Rescue(uint64_t page);
  // The program discarded `page` (madvise, munmap): forget its copies, and
  // release the pool's (kZero writes, in runs, every 100 ms, unless the
  // program touched the page again meanwhile).
  void Discard(uint64_t page);
  // The release tagged `tag` completed.
  void OnReleased(uint64_t tag, const Status& status);
  // The space completed the move it was asked for with `token`.
  Status OnMoved(uint32_t token, const MoveResult& result);
  // The write tagged `tag` completed.
  Status OnWriteDone(uint64_t tag, const Status& status);
  // Resubmits writes that failed, at most once a second.
  Status RetryFailed(uint64_t now_ns);
  // Works toward "every page is resident, zeros or in the pool" (a fork
  // needs it): drains every staged page, writes the dirty ones. True once
  // nothing is evicting, staged or being written; call again after
  // completions until then. Starts no new eviction.
  Result<bool> Settle();

 private:
  bool NeedRoom() const;
  Status Deactivate(bool* progress);
  struct MoveRunInfo {
    uint64_t first_page;
    uint32_t pages;
    uint32_t first_slot;
    uint32_t block;
  };
  // Asks the space to move a run of resident pages into its slots.
  Status StartMove(const MoveRunInfo& run);
  Status FinishMove(const MoveRunInfo& run, const MoveResult& result);
  // One run of `block` is settled; the block is sealed with its last.
  Status RunDone(uint32_t block);
  Status Drain(bool* progress);
  // The page `slot` holds, if it is still staged there (not rescued or discarded).
  std::optional<uint64_t> StagedPageAt(uint32_t slot) const;
  Status DrainSlot(uint32_t slot);
  Status SubmitWrite(uint64_t page, uint32_t slot);
  Status SubmitReleases();
  uint8_t* Shadow(uint32_t slot) const { return shadow_ + size_t{slot} * ctx_->page_size; }

  PagingContext* ctx_;
  EvictorOptions options_;
  std::function<void(uint64_t page)> on_probe_untouched_;
  std::vector<uint64_t> victims_;
  std::unordered_map<uint32_t, MoveRunInfo> moves_;  // asked, not answered
  std::vector<uint32_t> block_pending_;               // runs not settled, per block
  uint32_t next_token_ = 0;
  uint64_t evicting_ = 0;                             // pages in kEvicting
  uint64_t writing_ = 0;                              // writes in flight
  bool settling_ = false;  // in Settle(): a fork's child is to read the pool
  std::vector<uint8_t> scratch_;                      // a page, for BringBack
  std::vector<uint8_t*> from_, to_;  // a drain's copies
  // Ours, slot for slot like the staging area; a slot's copy lives from its
  // drain until its write completes.
  uint8_t* shadow_ = nullptr;
  size_t shadow_bytes_ = 0;
  struct FailedWrite {
    uint64_t page;
    uint32_t slot;
  };
  std::deque<FailedWrite> failed_;
  std::vector<uint64_t> release_;  // discarded pages whose pool copy is still there
  uint64_t next_release_ns_ = 0;
  uint64_t next_retry_ns_ = 0;
};

}  // namespace tessera::vnode
