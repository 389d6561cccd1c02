#include "vnode/staging.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include "common/check.h"

namespace tessera::vnode {

Result<Staging> Staging::Create(uint32_t blocks, size_t page_size) {
  TS_ASSIGN_OR_RETURN(Uffd uffd, Uffd::Open({.move = true, .sigbus = true}, {.move = true, .sigbus = true}));
  size_t bytes = size_t{blocks} * kBlockSlots * page_size;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Status::FromErrno(errno, "mmap staging area");
  madvise(p, bytes, MADV_NOHUGEPAGE);  // moves work on 4 KiB pages
  Status s = uffd.RegisterMissing(p, bytes);
  if (!s.ok()) {
    munmap(p, bytes);
    return s.With("staging area");
  }
  return Staging(std::move(uffd), static_cast<uint8_t*>(p), blocks, page_size);
}

Staging::Staging(Uffd uffd, uint8_t* base, uint32_t blocks, size_t page_size)
    : uffd_(std::move(uffd)), base_(base), blocks_(blocks), page_size_(page_size), block_(blocks),
      slot_page_(size_t{blocks} * kBlockSlots) {
  for (uint32_t b = blocks; b > 0; --b) free_.push_back(b - 1);
}

Staging::Staging(Staging&& o) noexcept
    : uffd_(std::move(o.uffd_)), base_(std::exchange(o.base_, nullptr)), blocks_(o.blocks_),
      page_size_(o.page_size_), block_(std::move(o.block_)), slot_page_(std::move(o.slot_page_)),
      free_(std::move(o.free_)), inactive_(std::move(o.inactive_)), probe_block_(o.probe_block_), held_(o.held_),
      inactive_pages_(o.inactive_pages_), draining_held_(o.draining_held_) {}

Staging::~Staging() {
  if (base_ != nullptr) munmap(base_, size_t{blocks_} * kBlockSlots * page_size_);
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
  CHECK(!b.sealed && slot % kBlockSlots == b.used) << "staging slots fill in order";
  slot_page_[slot] = page;
  ++b.used;
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
  // A block still in the FIFO waits for its drain, even when empty.
  if (!b.sealed || b.in_fifo || b.live > 0) return;
  if (b.held > 0) {
    madvise(base_ + size_t{block} * kBlockSlots * page_size_, kBlockSlots * page_size_, MADV_DONTNEED);
    held_ -= b.held;
    if (b.draining) draining_held_ -= b.held;
  }
  b = Block{};
  free_.push_back(block);
}

}  // namespace tessera::vnode
