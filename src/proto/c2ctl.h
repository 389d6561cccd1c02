// c2ctl: messages from a client (library or CLI) to the controller — regions
// and cluster state.
//
//   CreateRegion      = name:string size_bytes:u64 page_size:u32
//   OpenRegion        = name:string
//   DeleteRegion      = name:string
//   ListRegions       = (empty)
//   ClusterStatus     = (empty)
//   CreateRegion, OpenRegion reply with RegionInfo; DeleteRegion with (empty);
//   ListRegions with RegionList; ClusterStatus with ClusterStatusReply.
//
//   RegionInfo        = id:u64 name:string page_size:u32 num_pages:u64
//                       pages_per_fragment:u32
//                       node_count:u16 { node_id:u64 addr:string }*node_count
//                       fragment_count:u32 { node_index:u16 }*fragment_count
//   RegionList        = count:u32 RegionSummary*count
//   RegionSummary     = id:u64 name:string page_size:u32 num_pages:u64 node_count:u16
//   ClusterStatusReply= node_count:u32 NodeInfo*node_count RegionList
//   NodeInfo          = id:u64 addr:string capacity:u64 used:u64 rss:u64
//                       alive:u8 ms_since_heartbeat:u32
//
// RegionInfo is the region map: fragment f holds pages
// [f*pages_per_fragment, (f+1)*pages_per_fragment) and lives on
// nodes[fragment_nodes[f]]. Decode checks fragment_count =
// ceil(num_pages / pages_per_fragment), every node_index < node_count, and
// page_size a power of two in [512, 65536].
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "proto/opcode.h"
#include "proto/wire.h"

namespace tessera::proto::c2ctl {

struct NodeAddr {
  uint64_t id = 0;
  std::string addr;
};

struct RegionInfo {
  uint64_t id = 0;
  std::string name;
  uint32_t page_size = 0;
  uint64_t num_pages = 0;
  uint32_t pages_per_fragment = 0;
  std::vector<NodeAddr> nodes;
  std::vector<uint16_t> fragment_nodes;
  void Encode(Writer& w) const;
  static Result<RegionInfo> Decode(ByteSpan body);
};

struct RegionSummary {
  uint64_t id = 0;
  std::string name;
  uint32_t page_size = 0;
  uint64_t num_pages = 0;
  uint16_t node_count = 0;
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
  void Encode(Writer& w) const;
  static Result<CreateRegion> Decode(ByteSpan body);
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
