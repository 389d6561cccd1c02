// Staging: the bookkeeping of the area in the program's address space that
// evicted pages are moved into (space.h), in blocks of kBlockSlots slots.
// Eviction moves a batch of victims (UFFDIO_MOVE, runs of contiguous pages in
// one call each) into one block; the block then waits in FIFO order as
// "inactive": a page the program touches there comes back with one move and
// no network, which is how the pager learns what is still in use
// (eviction_policy.h). The oldest block is drained: its pages are copied out
// (the evictor writes the dirty ones to the pool from that copy) and the
// block's memory is dropped at once, with one madvise, so a batch pays one
// TLB shootdown, not 256. A block is reused once its memory is dropped and no
// slot is in use any more.
//
// Blocks are large because every drop stalls the pager: the madvise is a
// userfaultfd "remove" event, and until the pager has read it and the
// program's helper thread has run again, the kernel refuses every install
// (EAGAIN). With 64-slot blocks a sequential scan at 25 % cache (256 MiB)
// took 1.85-1.95 s; with 256, 1.57-1.61 s.
//
// Ownership: borrows the space. Thread-safety: none; the pager's thread owns
// it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "common/result.h"
#include "vnode/space.h"

namespace tessera::vnode {

class Staging {
 public:
  static constexpr uint32_t kBlockSlots = 256;

  // The space's staging area.
  explicit Staging(Space* space);

  // Where `slot` is, in the space.
  uint8_t* SlotAddress(uint32_t slot) const { return base_ + size_t{slot} * page_size_; }
  uint64_t PageOfSlot(uint32_t slot) const { return slot_page_[slot]; }

  // A free block for an eviction batch, if any.
  std::optional<uint32_t> TakeBlock();
  // Records that `slot` (in a taken block, not sealed) now holds `page`.
  void Fill(uint32_t slot, uint64_t page);
  // Ends filling `block`: it joins the inactive FIFO (or is freed if empty).
  void Seal(uint32_t block);
  // A filled slot for `page`, arriving straight from the pool (a prefetch
  // probe): probes share one open block, sealed when full. None if no block
  // is free.
  std::optional<uint32_t> TakeProbeSlot(uint64_t page);
  // Seals the open probe block, so that its probes age with the pages
  // evicted from now on (the evictor calls this before each batch).
  void SealProbeBlock();
  // The oldest inactive block not yet drained, removed from the FIFO. The
  // caller copies its live slots out, then calls Drop, then releases or hands
  // on each slot.
  std::optional<uint32_t> NextToDrain();
  // Drops the memory of a drained block (its pages were copied out).
  Status Drop(uint32_t block);
  // The space completed a drop later (Space::TakeCompletions).
  Status OnDropped(uint32_t block);
  // `slot`'s page no longer needs it. `moved_out`: its memory left with the
  // page (a move back), rather than being copied.
  void Release(uint32_t slot, bool moved_out);

  // Pages of local memory the area holds now.
  uint64_t held_pages() const { return held_; }
  // Pages in inactive blocks not yet drained (may include released slots).
  uint64_t inactive_pages() const { return inactive_pages_; }
  // Pages of memory held by drained blocks: being dropped.
  uint64_t draining_pages() const { return draining_held_; }
  uint32_t free_blocks() const { return static_cast<uint32_t>(free_.size()); }

 private:
  struct Block {
    uint32_t used = 0;  // slots filled
    uint32_t live = 0;  // slots whose page still needs them
    uint32_t held = 0;  // slots holding memory
    bool sealed = false;
    bool in_fifo = false;
    bool draining = false;
    bool dropping = false;  // Drop asked, not done yet
  };
  void Dropped(uint32_t block);
  void MaybeFree(uint32_t block);

  Space* space_;
  uint8_t* base_;
  uint32_t blocks_;
  size_t page_size_;
  std::vector<Block> block_;
  std::vector<uint64_t> slot_page_;
  std::vector<uint32_t> free_;
  std::deque<uint32_t> inactive_;
  std::optional<uint32_t> probe_block_;
  uint64_t held_ = 0;
  uint64_t inactive_pages_ = 0;
  uint64_t draining_held_ = 0;
};

}  // namespace tessera::vnode
