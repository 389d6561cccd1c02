// PageCodec: how one page becomes the k+m shares a stripe stores, and back.
// A share is one fragment slot (proto::c2ctl::SlotSize bytes). With k = 1
// (none, replicas) every share is the page itself; with ec:K+M the page is
// cut into k data shares (the last one zero-padded) and ISA-L computes m
// parity shares, so any k shares of one version give the page back.
//
// Ownership: owns its Reed-Solomon tables. Thread-safety: const methods may be
// called concurrently (ReedSolomon caches decode plans under its own lock).
#pragma once

#include <cstdint>
#include <memory>

#include "common/result.h"
#include "ec/reed_solomon.h"
#include "proto/redundancy.h"

namespace tessera::client {

class PageCodec {
 public:
  static Result<std::unique_ptr<PageCodec>> Create(const proto::Redundancy& r, uint32_t page_size);

  int k() const { return k_; }
  int m() const { return m_; }
  int width() const { return k_ + m_; }
  uint32_t page_size() const { return page_size_; }
  uint32_t slot_size() const { return slot_size_; }
  // Bytes of scratch a page needs for its shares (width * slot_size, or 0
  // when every share can point into the page).
  size_t scratch_bytes() const;

  // Points share[j] (width entries) at the bytes to store for `page`: into
  // the page itself where a share is a plain slice of it, else into `scratch`
  // (scratch_bytes()), which it fills.
  void Split(const uint8_t* page, uint8_t* scratch, const uint8_t** share) const;

  // Writes the page held by `shares` (width * slot_size bytes, share j at
  // j * slot_size) into `page`, using only the shares whose bit is set in
  // `have`; decodes in place when a data share is missing. DataLoss when
  // fewer than k are set.
  Status Join(uint8_t* shares, uint32_t have, uint8_t* page) const;

 private:
  PageCodec(int k, int m, uint32_t page_size, std::unique_ptr<ec::ReedSolomon> rs);

  const int k_;
  const int m_;
  const uint32_t page_size_;
  const uint32_t slot_size_;
  std::unique_ptr<ec::ReedSolomon> rs_;  // null when k = 1
};

}  // namespace tessera::client
