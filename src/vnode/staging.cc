#include "vnode/staging.h"

#include <cerrno>
#include <algorithm>
#include <utility>

#include "common/check.h"

namespace tessera::vnode {

Staging::Staging(Space* space)
    : space_(space), base_(space->layout().staging), blocks_(space->layout().staging_blocks),
      page_size_(space->layout().page_size), block_(blocks_), slot_page_(size_t{blocks_} * kBlockSlots) {
  for (uint32_t b = blocks_; b > 0; --b) free_.push_back(b - 1);
}

std::optional<uint32_t> Staging::TakeBlock() {
  if (free_.empty()) return std::nullopt;
  uint32_t b = free_.back();
  free_.pop_back();
  block_[b] = Block{};
  return b;
}

void Staging::Fill(uint32_t slot, uint64_t page) {
  Block& b = block_[slot / kBlockSlots];
  CHECK(!b.sealed) << "staging slot " << slot << " filled in a sealed block";
  slot_page_[slot] = page;
  b.used = std::max<uint32_t>(b.used, slot % kBlockSlots + 1);  // a move may leave holes
  ++b.live;
  ++b.held;
  ++held_;
}

void Staging::Seal(uint32_t block) {
  Block& b = block_[block];
  b.sealed = true;
  if (b.used == 0) {
    free_.push_back(block);
    return;
  }
  inactive_.push_back(block);
  b.in_fifo = true;
  inactive_pages_ += b.used;
}

void Staging::SealProbeBlock() {
  if (!probe_block_) return;
  Seal(*probe_block_);
  probe_block_.reset();
}

std::optional<uint32_t> Staging::TakeProbeSlot(uint64_t page) {
  if (probe_block_ && block_[*probe_block_].used == kBlockSlots) SealProbeBlock();
  if (!probe_block_) probe_block_ = TakeBlock();
  if (!probe_block_) return std::nullopt;
  uint32_t slot = *probe_block_ * kBlockSlots + block_[*probe_block_].used;
  Fill(slot, page);
  return slot;
}

std::optional<uint32_t> Staging::NextToDrain() {
  if (inactive_.empty()) return std::nullopt;
  uint32_t b = inactive_.front();
  inactive_.pop_front();
  block_[b].in_fifo = false;
  block_[b].draining = true;
  draining_held_ += block_[b].held;
  inactive_pages_ -= block_[b].used;
  return b;
}

Status Staging::Drop(uint32_t block) {
  Block& b = block_[block];
  CHECK(b.draining && !b.dropping);
  if (b.held == 0) {
    MaybeFree(block);
    return Status::Ok();
  }
  b.dropping = true;
  TS_ASSIGN_OR_RETURN(bool done, space_->Drop(SlotAddress(block * kBlockSlots), kBlockSlots * page_size_, block));
  if (done) Dropped(block);
  return Status::Ok();
}

Status Staging::OnDropped(uint32_t block) {
  if (block >= blocks_ || !block_[block].dropping) {
    return ProtocolError("a drop of staging block " + std::to_string(block) + " that was not asked for");
  }
  Dropped(block);
  return Status::Ok();
}

void Staging::Dropped(uint32_t block) {
  Block& b = block_[block];
  held_ -= b.held;
  draining_held_ -= b.held;
  b.held = 0;
  b.dropping = false;
  MaybeFree(block);
}

void Staging::Release(uint32_t slot, bool moved_out) {
  uint32_t block = slot / kBlockSlots;
  Block& b = block_[block];
  CHECK(b.live > 0) << "staging slot " << slot << " released twice";
  --b.live;
  if (moved_out) {
    --b.held;
    --held_;
    if (b.draining) --draining_held_;
  }
  MaybeFree(block);
}

void Staging::MaybeFree(uint32_t block) {
  Block& b = block_[block];
  // A block still in the FIFO waits for its drain, even when empty; a
  // drained one, for its memory to go.
  if (!b.sealed || b.in_fifo || b.live > 0 || b.held > 0 || b.dropping) return;
  b = Block{};
  free_.push_back(block);
}

}  // namespace tessera::vnode
