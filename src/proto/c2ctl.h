// c2ctl: messages from a client (library or CLI) to the controller — regions
// and cluster state.
//
//   CreateRegion      = name:string size_bytes:u64 page_size:u32 Redundancy lease_ms:u32
//   OpenRegion        = name:string
//   DeleteRegion      = name:string
//   ListRegions       = (empty)
//   ClusterStatus     = (empty)
//   CloneRegion       = source:string name:string lease_ms:u32
//   RenewLeases       = count:u32 { name:string }*count
//   WatchMaps         = hold_ms:u32 count:u32 { region:u64 epoch:u64 }*count
//   CreateRegion, CloneRegion, OpenRegion reply with RegionInfo; DeleteRegion
//   and RenewLeases with (empty); ListRegions with RegionList; ClusterStatus
//   with ClusterStatusReply; WatchMaps with MapChanges — at once if a region
//   named has a newer map than the epoch given, or is gone; otherwise as soon
//   as one changes, or when hold_ms pass (with no changes). A client follows
//   its regions' maps this way without polling; after a reconnect (another
//   controller leading) it sends the epochs it has and misses nothing.
//
//   MapChanges        = count:u32 { info:blob(RegionInfo) }*count
//                       gone_count:u32 { region:u64 }*gone_count
//
// lease_ms = 0: the region lives until deleted. Otherwise the controller
// deletes it once lease_ms pass without a RenewLeases naming it (a program
// killed before it could delete its region leaves nothing behind for long).
//
//   Redundancy        (proto/redundancy.h)
//   RegionInfo        = id:u64 name:string page_size:u32 num_pages:u64
//                       pages_per_stripe:u32 Redundancy epoch:u64
//                       node_count:u16 { node_id:u64 addr:string }*node_count
//                       fragment_count:u32 { node_index:u16 state:u8 }*fragment_count
//   RegionList        = count:u32 RegionSummary*count
//   RegionSummary     = id:u64 name:string page_size:u32 num_pages:u64 node_count:u16
//                       Redundancy health:u8 stripes:u64 degraded_stripes:u64
//                       lost_stripes:u64 rebuild_done:u64 rebuild_total:u64
//                       rebuild_bytes_per_s:u64
//   ClusterStatusReply= node_count:u32 NodeInfo*node_count RegionList
//   NodeInfo          = id:u64 addr:string capacity:u64 used:u64 rss:u64
//                       alive:u8 ms_since_heartbeat:u32
//
// RegionInfo is the region map. Stripe s holds pages
// [s*pages_per_stripe, (s+1)*pages_per_stripe) and is cut into k+m
// fragments: fragment s*(k+m)+j holds share j of each of those pages (the
// whole page when k = 1; data shares first, then parity) and lives on
// nodes[node_index]. Its state says whether to read it (ready), only write it
// (rebuilding: a replacement being filled) or skip it (lost: its node died).
// epoch grows with every change to the map. Decode checks fragment_count =
// ceil(num_pages / pages_per_stripe) * (k+m), every node_index < node_count,
// the redundancy's shape, and page_size a power of two in [512, 65536].
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "proto/opcode.h"
#include "proto/redundancy.h"
#include "proto/wire.h"

namespace tessera::proto::c2ctl {

// Bytes of one page a fragment slot holds: ceil(page_size / k), rounded up
// to 8 so parity math runs on whole words.
uint32_t SlotSize(uint32_t page_size, int k);

enum class FragmentState : uint8_t { kReady = 0, kRebuilding = 1, kLost = 2 };

struct NodeAddr {
  uint64_t id = 0;
  std::string addr;
};

struct RegionInfo {
  uint64_t id = 0;
  std::string name;
  uint32_t page_size = 0;
  uint64_t num_pages = 0;
  uint32_t pages_per_stripe = 0;
  Redundancy redundancy;
  uint64_t epoch = 0;
  std::vector<NodeAddr> nodes;
  std::vector<uint16_t> fragment_nodes;
  std::vector<FragmentState> fragment_states;
  uint64_t stripe_count() const { return (num_pages + pages_per_stripe - 1) / pages_per_stripe; }
  void Encode(Writer& w) const;
  static Result<RegionInfo> Decode(ByteSpan body);
};

enum class Health : uint8_t { kHealthy = 0, kDegraded = 1, kRebuilding = 2, kLost = 3 };

struct RegionSummary {
  uint64_t id = 0;
  std::string name;
  uint32_t page_size = 0;
  uint64_t num_pages = 0;
  uint16_t node_count = 0;
  Redundancy redundancy;
  Health health = Health::kHealthy;
  uint64_t stripes = 0;
  uint64_t degraded_stripes = 0;  // missing at least one fragment, still readable
  uint64_t lost_stripes = 0;      // missing more than m fragments
  uint64_t rebuild_done = 0;      // fragment bytes rebuilt so far
  uint64_t rebuild_total = 0;     // fragment bytes the running rebuild must make
  uint64_t rebuild_bytes_per_s = 0;
};

struct RegionList {
  std::vector<RegionSummary> regions;
  void Encode(Writer& w) const;
  static Result<RegionList> Decode(ByteSpan body);
  // Reads the list in place, for messages that embed it.
  static void Read(Reader& r, RegionList* out);
};

struct NodeInfo {
  uint64_t id = 0;
  std::string addr;
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t rss = 0;
  bool alive = false;
  uint32_t ms_since_heartbeat = 0;
};

struct ClusterStatusReply {
  std::vector<NodeInfo> nodes;
  RegionList regions;
  void Encode(Writer& w) const;
  static Result<ClusterStatusReply> Decode(ByteSpan body);
};

struct CreateRegion {
  static constexpr Op kOp = Op::kC2ctlCreateRegion;
  using Reply = RegionInfo;
  std::string name;
  uint64_t size_bytes = 0;
  uint32_t page_size = 4096;
  Redundancy redundancy;
  uint32_t lease_ms = 0;
  void Encode(Writer& w) const;
  static Result<CreateRegion> Decode(ByteSpan body);
};

// A new region `name` holding a copy of region `source`'s pages, placed on
// the same nodes (each copies its fragments locally): a fork's memory.
struct CloneRegion {
  static constexpr Op kOp = Op::kC2ctlCloneRegion;
  using Reply = RegionInfo;
  std::string source;
  std::string name;
  uint32_t lease_ms = 0;
  void Encode(Writer& w) const {
    w.String(source);
    w.String(name);
    w.U32(lease_ms);
  }
  static Result<CloneRegion> Decode(ByteSpan body);
};

inline constexpr uint32_t kMaxLeaseRenewals = 4096;  // names per RenewLeases

struct RenewLeases {
  static constexpr Op kOp = Op::kC2ctlRenewLeases;
  using Reply = Empty;
  std::vector<std::string> names;
  void Encode(Writer& w) const {
    w.U32(static_cast<uint32_t>(names.size()));
    for (const std::string& n : names) w.String(n);
  }
  static Result<RenewLeases> Decode(ByteSpan body);
};

inline constexpr uint32_t kMaxWatchedRegions = 4096;  // regions per WatchMaps
inline constexpr uint32_t kMaxWatchHoldMs = 60000;

struct WatchedRegion {
  uint64_t id = 0;
  uint64_t epoch = 0;  // of the map the client has
};

struct MapChanges {
  std::vector<RegionInfo> maps;  // newer maps of regions watched
  std::vector<uint64_t> gone;    // regions watched that no longer exist
  void Encode(Writer& w) const;
  static Result<MapChanges> Decode(ByteSpan body);
};

struct WatchMaps {
  static constexpr Op kOp = Op::kC2ctlWatchMaps;
  using Reply = MapChanges;
  uint32_t hold_ms = 0;
  std::vector<WatchedRegion> regions;
  void Encode(Writer& w) const {
    w.U32(hold_ms);
    w.U32(static_cast<uint32_t>(regions.size()));
    for (const WatchedRegion& r : regions) {
      w.U64(r.id);
      w.U64(r.epoch);
    }
  }
  static Result<WatchMaps> Decode(ByteSpan body);
};

// OpenRegion and DeleteRegion carry only a name.
template <Op kOpcode, typename ReplyT>
struct NamedRegionRequest {
  static constexpr Op kOp = kOpcode;
  using Reply = ReplyT;
  std::string name;
  void Encode(Writer& w) const { w.String(name); }
  static Result<NamedRegionRequest> Decode(ByteSpan body) {
    Reader r(body);
    NamedRegionRequest m;
    m.name = r.String();
    TS_RETURN_IF_ERROR(r.Finish(OpName(static_cast<uint8_t>(kOpcode))));
    return m;
  }
};
using OpenRegion = NamedRegionRequest<Op::kC2ctlOpenRegion, RegionInfo>;
using DeleteRegion = NamedRegionRequest<Op::kC2ctlDeleteRegion, Empty>;

struct ListRegions : Empty {
  static constexpr Op kOp = Op::kC2ctlListRegions;
  using Reply = RegionList;
  static Result<ListRegions> Decode(ByteSpan body);
};

struct ClusterStatus : Empty {
  static constexpr Op kOp = Op::kC2ctlClusterStatus;
  using Reply = ClusterStatusReply;
  static Result<ClusterStatus> Decode(ByteSpan body);
};

}  // namespace tessera::proto::c2ctl
