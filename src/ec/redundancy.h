// Redundancy: how a region survives memory-node losses, chosen when it is
// created — none, N full replicas, or Reed-Solomon K+M. Spelled on the command
// line and in metadata as "none", "replicas:N" and "ec:K+M".
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tessera::ec {

struct Redundancy {
  enum class Kind : uint8_t { kNone = 0, kReplicas = 1, kErasure = 2 };
  Kind kind = Kind::kNone;
  // kReplicas: copies = replicas, data = 1. kErasure: data = K, parity = M.
  // kNone: data = 1, parity = 0.
  uint8_t data = 1;
  uint8_t parity = 0;

  static Redundancy None() { return {}; }
  static Redundancy Replicas(uint8_t copies) { return {Kind::kReplicas, 1, static_cast<uint8_t>(copies - 1)}; }
  static Redundancy Erasure(uint8_t k, uint8_t m) { return {Kind::kErasure, k, m}; }

  // Fragments per stripe, each on a distinct node.
  int width() const { return data + parity; }
  // Node losses a stripe survives.
  int tolerates() const { return parity; }
  // Bytes stored per byte written.
  double overhead() const { return static_cast<double>(width()) / data; }

  std::string ToString() const;
  bool operator==(const Redundancy&) const = default;
};

// Parses "none", "replicas:N" (2 <= N <= 8) or "ec:K+M" (1 <= K, 1 <= M,
// K + M <= 32); the error quotes the input and the accepted forms.
Result<Redundancy> ParseRedundancy(std::string_view text);

}  // namespace tessera::ec
