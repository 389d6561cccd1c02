// Redundancy: how a region survives memory-node losses, chosen when it is
// created — none, N full replicas, or Reed-Solomon K+M — and so how its pages
// are cut into fragments (proto/c2ctl.h). Spelled on the command line as
// "none", "replicas:N" and "ec:K+M"; on the wire as
//
//   Redundancy = kind:u8 k:u8 m:u8   ; 0 none (1+0), 1 replicas (1+m), 2 ec (k+m)
//
// Every scheme is k data fragments plus m redundant ones per stripe, any k of
// which hold the page: replicas are k = 1 (a copy is a one-fragment "decode").
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proto/wire.h"

namespace tessera::proto {

struct Redundancy {
  static constexpr int kMaxWidth = 32;
  enum class Kind : uint8_t { kNone = 0, kReplicas = 1, kErasure = 2 };
  Kind kind = Kind::kNone;
  uint8_t k = 1;  // fragments that hold a page's bytes
  uint8_t m = 0;  // redundant fragments: losses a stripe survives

  static Redundancy None() { return {}; }
  static Redundancy Replicas(uint8_t copies) { return {Kind::kReplicas, 1, static_cast<uint8_t>(copies - 1)}; }
  static Redundancy Erasure(uint8_t k, uint8_t m) { return {Kind::kErasure, k, m}; }

  // Fragments per stripe, each on a distinct node.
  int width() const { return k + m; }
  int tolerates() const { return m; }
  // Bytes stored per byte written.
  double overhead() const { return static_cast<double>(width()) / k; }

  std::string ToString() const;
  void Encode(Writer& w) const;
  // Reads and checks the shape (none 1+0, replicas 1+m, ec k+m; width <= 32).
  static void Read(Reader& r, Redundancy* out);
  bool operator==(const Redundancy&) const = default;
};

// Parses "none", "replicas:N" (2 <= N <= 8) or "ec:K+M" (1 <= K, 1 <= M,
// K + M <= 32); the error quotes the input and the accepted forms.
Result<Redundancy> ParseRedundancy(std::string_view text);

}  // namespace tessera::proto
