// ctl2m: messages from the controller to a memory node — allocation.
//
//   AllocFragments      = region:u64 epoch:u64 count:u32 { fragment:u32 slots:u32 slot_size:u32 }*count
//   AllocFragmentsReply = (empty)
//   FreeRegion          = region:u64
//   FreeRegionReply     = freed_bytes:u64
//   SetEpoch            = region:u64 epoch:u64
//   SetEpochReply       = (empty)
//   CloneFragments      = region:u64 epoch:u64 source:u64 count:u32 { fragment:u32 }*count
//   CloneFragmentsReply = (empty)
//   FreeFragments       = region:u64 count:u32 { fragment:u32 }*count
//   FreeFragmentsReply  = freed_bytes:u64
//
// epoch is the region map's; the node refuses requests made with an older
// one from then on. AllocFragments is all-or-nothing at the node: if any fragment does not fit,
// none is kept and the reply is an out-of-capacity error. 1 <= count <=
// kMaxFragmentsPerRequest; 1 <= slots <= kMaxSlotsPerFragment;
// 1 <= slot_size <= c2m::kMaxSlotSize. FreeRegion of a region the node does not
// hold succeeds with freed_bytes = 0, so the controller can retry it safely.
//
// SetEpoch tells a node the region map changed (a fragment was lost, or
// rebuilt elsewhere): from then on it refuses requests made with an older map,
// which sends their clients to the controller for the new one. It never
// lowers a node's epoch, and is a no-op for a region the node does not hold.
//
// FreeFragments frees just those fragments of `region` (the ones a rebuild
// placed on this node but the controller could not record); fragments the
// node does not hold are skipped, so a retry is safe. Same limits on count.
//
// CloneFragments allocates fragments of `region` as copies of the same-numbered
// fragments of `source` held by this node — the memory side of a fork: the
// content is copied inside the node, never over the network. All or nothing,
// like AllocFragments; same limits on count.
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "proto/opcode.h"
#include "proto/wire.h"

namespace tessera::proto::ctl2m {

inline constexpr uint32_t kMaxFragmentsPerRequest = 1u << 20;
inline constexpr uint32_t kMaxSlotsPerFragment = 1u << 20;

struct FragmentSpec {
  uint32_t fragment = 0;
  uint32_t slots = 0;
  uint32_t slot_size = 0;
};

struct AllocFragments {
  static constexpr Op kOp = Op::kCtl2mAllocFragments;
  using Reply = Empty;
  uint64_t region = 0;
  uint64_t epoch = 0;
  std::vector<FragmentSpec> fragments;
  void Encode(Writer& w) const;
  static Result<AllocFragments> Decode(ByteSpan body);
};

struct FreeRegionReply {
  uint64_t freed_bytes = 0;
  void Encode(Writer& w) const { w.U64(freed_bytes); }
  static Result<FreeRegionReply> Decode(ByteSpan body);
};

struct FreeRegion {
  static constexpr Op kOp = Op::kCtl2mFreeRegion;
  using Reply = FreeRegionReply;
  uint64_t region = 0;
  void Encode(Writer& w) const { w.U64(region); }
  static Result<FreeRegion> Decode(ByteSpan body);
};

struct SetEpoch {
  static constexpr Op kOp = Op::kCtl2mSetEpoch;
  using Reply = Empty;
  uint64_t region = 0;
  uint64_t epoch = 0;
  void Encode(Writer& w) const {
    w.U64(region);
    w.U64(epoch);
  }
  static Result<SetEpoch> Decode(ByteSpan body);
};

struct CloneFragments {
  static constexpr Op kOp = Op::kCtl2mCloneFragments;
  using Reply = Empty;
  uint64_t region = 0;
  uint64_t epoch = 0;
  uint64_t source = 0;
  std::vector<uint32_t> fragments;
  void Encode(Writer& w) const;
  static Result<CloneFragments> Decode(ByteSpan body);
};

struct FreeFragments {
  static constexpr Op kOp = Op::kCtl2mFreeFragments;
  using Reply = FreeRegionReply;
  uint64_t region = 0;
  std::vector<uint32_t> fragments;
  void Encode(Writer& w) const;
  static Result<FreeFragments> Decode(ByteSpan body);
};

}  // namespace tessera::proto::ctl2m
