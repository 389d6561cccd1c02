// ReedSolomon: systematic k+m erasure coding over GF(2^8) with ISA-L — k data
// fragments plus m parity fragments, any k of which rebuild the rest. Tessera
// uses it so a region survives m memory-node losses at (k+m)/k the memory,
// where replication needs m+1 times.
//
// The code is built from a Cauchy matrix, for which every k-row subset is
// invertible, so any m losses are decodable. Decoding a loss pattern needs a
// k x k matrix inversion (~0.3 us at k=4, ~2 us at k=8 on this machine class);
// tables are cached per pattern.
//
// Thread-safety: Encode and Reconstruct may be called concurrently; the
// pattern cache is under a mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace tessera::ec {

class ReedSolomon {
 public:
  // 1 <= k, 0 <= m, k + m <= kMaxFragments.
  static constexpr int kMaxFragments = 32;
  static Result<std::unique_ptr<ReedSolomon>> Create(int k, int m);

  int k() const { return k_; }
  int m() const { return m_; }

  // Computes the m parity fragments from the k data fragments, each `len`
  // bytes.
  void Encode(size_t len, std::span<const uint8_t* const> data, std::span<uint8_t* const> parity) const;

  // Updates the m parity fragments in place after data fragment `index`
  // changed by `delta` (old XOR new): what a stripe update costs without
  // reading the other data fragments.
  void ApplyDelta(size_t len, int index, const uint8_t* delta, std::span<uint8_t* const> parity) const;

  // fragments has k + m entries (data first, then parity), each `len` bytes;
  // `present` says which hold valid bytes. Rebuilds every missing fragment in
  // place. Fails, touching nothing, when fewer than k are present.
  Status Reconstruct(size_t len, std::span<uint8_t* const> fragments, std::span<const bool> present) const;

 private:
  ReedSolomon(int k, int m);
  struct DecodePlan {
    std::vector<int> sources;  // k present fragment indexes
    std::vector<int> targets;  // missing fragment indexes
    std::vector<uint8_t> tables;
  };
  Result<std::shared_ptr<const DecodePlan>> PlanFor(uint32_t missing_mask) const;

  const int k_;
  const int m_;
  std::vector<uint8_t> matrix_;         // (k+m) x k, identity on top
  std::vector<uint8_t> encode_tables_;  // ISA-L expanded tables of the parity rows
  mutable std::mutex mu_;
  mutable std::unordered_map<uint32_t, std::shared_ptr<const DecodePlan>> plans_;  // guarded by mu_
};

}  // namespace tessera::ec
