#include "client/page_codec.h"

#include <bit>
#include <cstring>
#include <vector>

#include "proto/c2ctl.h"

namespace tessera::client {

Result<std::unique_ptr<PageCodec>> PageCodec::Create(const proto::Redundancy& r, uint32_t page_size) {
  std::unique_ptr<ec::ReedSolomon> rs;
  if (r.k > 1) {
    TS_ASSIGN_OR_RETURN(rs, ec::ReedSolomon::Create(r.k, r.m));
  }
  return std::unique_ptr<PageCodec>(new PageCodec(r.k, r.m, page_size, std::move(rs)));
}

PageCodec::PageCodec(int k, int m, uint32_t page_size, std::unique_ptr<ec::ReedSolomon> rs)
    : k_(k), m_(m), page_size_(page_size), slot_size_(proto::c2ctl::SlotSize(page_size, k)), rs_(std::move(rs)) {}

size_t PageCodec::scratch_bytes() const { return k_ == 1 ? 0 : static_cast<size_t>(width()) * slot_size_; }

void PageCodec::Split(const uint8_t* page, uint8_t* scratch, const uint8_t** share) const {
  if (k_ == 1) {
    for (int j = 0; j < width(); ++j) share[j] = page;
    return;
  }
  const bool exact = static_cast<uint64_t>(slot_size_) * k_ == page_size_;
  for (int j = 0; j < k_; ++j) {
    if (exact) {
      share[j] = page + static_cast<size_t>(j) * slot_size_;
      continue;
    }
    // The page does not cut evenly: copy, zero-padding the last share.
    uint8_t* s = scratch + static_cast<size_t>(j) * slot_size_;
    size_t off = static_cast<size_t>(j) * slot_size_;
    size_t n = off >= page_size_ ? 0 : std::min<size_t>(slot_size_, page_size_ - off);
    std::memcpy(s, page + off, n);
    std::memset(s + n, 0, slot_size_ - n);
    share[j] = s;
  }
  uint8_t* parity[proto::Redundancy::kMaxWidth];
  for (int j = 0; j < m_; ++j) parity[j] = scratch + static_cast<size_t>(k_ + j) * slot_size_;
  rs_->Encode(slot_size_, std::span(share, k_), std::span(parity, m_));
  for (int j = 0; j < m_; ++j) share[k_ + j] = parity[j];
}

Status PageCodec::Join(uint8_t* shares, uint32_t have, uint8_t* page) const {
  if (std::popcount(have) < k_) {
    return DataLoss(std::to_string(std::popcount(have)) + " of " + std::to_string(width()) +
                    " fragments readable, " + std::to_string(k_) + " needed");
  }
  if (k_ == 1) {
    std::memcpy(page, shares + static_cast<size_t>(std::countr_zero(have)) * slot_size_, page_size_);
    return Status::Ok();
  }
  const uint32_t data_mask = (1u << k_) - 1;
  if ((have & data_mask) != data_mask) {
    uint8_t* frags[proto::Redundancy::kMaxWidth];
    bool present[proto::Redundancy::kMaxWidth];
    for (int j = 0; j < width(); ++j) {
      frags[j] = shares + static_cast<size_t>(j) * slot_size_;
      present[j] = (have >> j) & 1;
    }
    TS_RETURN_IF_ERROR(rs_->Reconstruct(slot_size_, std::span(frags, width()), std::span(present, width())));
  }
  // Data shares are contiguous in `shares`: the page is their prefix.
  std::memcpy(page, shares, page_size_);
  return Status::Ok();
}

}  // namespace tessera::client
