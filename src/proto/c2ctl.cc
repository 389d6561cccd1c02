#include "proto/c2ctl.h"

namespace tessera::proto::c2ctl {
namespace {

constexpr uint32_t kMaxRegions = 1u << 20;
constexpr uint32_t kMaxNodes = 4096;
constexpr uint32_t kMaxFragments = 8u << 20;

bool ValidPageSize(uint32_t s) { return s >= 512 && s <= 65536 && (s & (s - 1)) == 0; }

}  // namespace

uint32_t SlotSize(uint32_t page_size, int k) {
  uint32_t share = (page_size + static_cast<uint32_t>(k) - 1) / static_cast<uint32_t>(k);
  return (share + 7) & ~7u;
}

void RegionInfo::Encode(Writer& w) const {
  w.U64(id);
  w.String(name);
  w.U32(page_size);
  w.U64(num_pages);
  w.U32(pages_per_stripe);
  redundancy.Encode(w);
  w.U64(epoch);
  w.U16(static_cast<uint16_t>(nodes.size()));
  for (const NodeAddr& n : nodes) {
    w.U64(n.id);
    w.String(n.addr);
  }
  w.U32(static_cast<uint32_t>(fragment_nodes.size()));
  for (size_t i = 0; i < fragment_nodes.size(); ++i) {
    w.U16(fragment_nodes[i]);
    w.U8(static_cast<uint8_t>(fragment_states[i]));
  }
}

Result<RegionInfo> RegionInfo::Decode(ByteSpan body) {
  Reader r(body);
  RegionInfo m;
  m.id = r.U64();
  m.name = r.String();
  m.page_size = r.U32();
  m.num_pages = r.U64();
  m.pages_per_stripe = r.U32();
  Redundancy::Read(r, &m.redundancy);
  m.epoch = r.U64();
  uint16_t node_count = r.U16();
  if (node_count > kMaxNodes) r.Fail("node count " + std::to_string(node_count));
  for (uint16_t i = 0; i < node_count && r.ok(); ++i) {
    NodeAddr n;
    n.id = r.U64();
    n.addr = r.String();
    m.nodes.push_back(std::move(n));
  }
  uint32_t frags = r.Count(3, kMaxFragments, "fragment");
  m.fragment_nodes.resize(frags);
  m.fragment_states.resize(frags);
  for (uint32_t f = 0; f < frags && r.ok(); ++f) {
    m.fragment_nodes[f] = r.U16();
    uint8_t state = r.U8();
    if (r.ok() && m.fragment_nodes[f] >= node_count) {
      r.Fail("fragment on node index " + std::to_string(m.fragment_nodes[f]));
    }
    if (state > static_cast<uint8_t>(FragmentState::kLost)) r.Fail("fragment state " + std::to_string(state));
    m.fragment_states[f] = static_cast<FragmentState>(state);
  }
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::RegionInfo"));
  if (!ValidPageSize(m.page_size)) return ProtocolError("RegionInfo: page size " + std::to_string(m.page_size));
  if (m.num_pages == 0 || m.pages_per_stripe == 0) return ProtocolError("RegionInfo: empty region");
  uint64_t want = m.stripe_count() * static_cast<uint64_t>(m.redundancy.width());
  if (want != frags) {
    return ProtocolError("RegionInfo: " + std::to_string(frags) + " fragments for " +
                         std::to_string(m.num_pages) + " pages");
  }
  return m;
}

void RegionList::Encode(Writer& w) const {
  w.U32(static_cast<uint32_t>(regions.size()));
  for (const RegionSummary& s : regions) {
    w.U64(s.id);
    w.String(s.name);
    w.U32(s.page_size);
    w.U64(s.num_pages);
    w.U16(s.node_count);
    s.redundancy.Encode(w);
    w.U8(static_cast<uint8_t>(s.health));
    for (uint64_t v : {s.stripes, s.degraded_stripes, s.lost_stripes, s.rebuild_done, s.rebuild_total,
                       s.rebuild_bytes_per_s}) {
      w.U64(v);
    }
  }
}

void RegionList::Read(Reader& r, RegionList* out) {
  uint32_t n = r.Count(76, kMaxRegions, "region");
  out->regions.resize(n);
  for (RegionSummary& s : out->regions) {
    s.id = r.U64();
    s.name = r.String();
    s.page_size = r.U32();
    s.num_pages = r.U64();
    s.node_count = r.U16();
    Redundancy::Read(r, &s.redundancy);
    uint8_t health = r.U8();
    if (health > static_cast<uint8_t>(Health::kLost)) r.Fail("region health " + std::to_string(health));
    s.health = static_cast<Health>(health);
    for (uint64_t* v : {&s.stripes, &s.degraded_stripes, &s.lost_stripes, &s.rebuild_done, &s.rebuild_total,
                        &s.rebuild_bytes_per_s}) {
      *v = r.U64();
    }
    if (!r.ok()) break;
  }
}

Result<RegionList> RegionList::Decode(ByteSpan body) {
  Reader r(body);
  RegionList m;
  Read(r, &m);
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::RegionList"));
  return m;
}

void ClusterStatusReply::Encode(Writer& w) const {
  w.U32(static_cast<uint32_t>(nodes.size()));
  for (const NodeInfo& n : nodes) {
    w.U64(n.id);
    w.String(n.addr);
    w.U64(n.capacity);
    w.U64(n.used);
    w.U64(n.rss);
    w.U8(n.alive ? 1 : 0);
    w.U32(n.ms_since_heartbeat);
  }
  regions.Encode(w);
}

Result<ClusterStatusReply> ClusterStatusReply::Decode(ByteSpan body) {
  Reader r(body);
  ClusterStatusReply m;
  uint32_t n = r.Count(39, kMaxNodes, "node");
  m.nodes.resize(n);
  for (NodeInfo& node : m.nodes) {
    node.id = r.U64();
    node.addr = r.String();
    node.capacity = r.U64();
    node.used = r.U64();
    node.rss = r.U64();
    uint8_t alive = r.U8();
    if (alive > 1) r.Fail("alive flag " + std::to_string(alive));
    node.alive = alive == 1;
    node.ms_since_heartbeat = r.U32();
  }
  RegionList::Read(r, &m.regions);
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::ClusterStatusReply"));
  return m;
}

void CreateRegion::Encode(Writer& w) const {
  w.String(name);
  w.U64(size_bytes);
  w.U32(page_size);
  redundancy.Encode(w);
  w.U32(lease_ms);
}

Result<CreateRegion> CreateRegion::Decode(ByteSpan body) {
  Reader r(body);
  CreateRegion m;
  m.name = r.String();
  m.size_bytes = r.U64();
  m.page_size = r.U32();
  Redundancy::Read(r, &m.redundancy);
  m.lease_ms = r.U32();
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::CreateRegion"));
  if (!ValidPageSize(m.page_size)) {
    return InvalidArgument("page size " + std::to_string(m.page_size) +
                           " is not a power of two between 512 and 65536");
  }
  return m;
}

Result<CloneRegion> CloneRegion::Decode(ByteSpan body) {
  Reader r(body);
  CloneRegion m;
  m.source = r.String();
  m.name = r.String();
  m.lease_ms = r.U32();
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::CloneRegion"));
  return m;
}

Result<RenewLeases> RenewLeases::Decode(ByteSpan body) {
  Reader r(body);
  RenewLeases m;
  uint32_t n = r.Count(4, kMaxLeaseRenewals, "name");
  m.names.resize(n);
  for (std::string& name : m.names) name = r.String();
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::RenewLeases"));
  return m;
}

Result<ListRegions> ListRegions::Decode(ByteSpan body) {
  TS_RETURN_IF_ERROR(Empty::Decode(body).status());
  return ListRegions{};
}

Result<ClusterStatus> ClusterStatus::Decode(ByteSpan body) {
  TS_RETURN_IF_ERROR(Empty::Decode(body).status());
  return ClusterStatus{};
}

void MapChanges::Encode(Writer& w) const {
  w.U32(static_cast<uint32_t>(maps.size()));
  Bytes info;
  for (const RegionInfo& m : maps) {
    info.clear();
    Writer iw(&info);
    m.Encode(iw);
    w.Blob(info);
  }
  w.U32(static_cast<uint32_t>(gone.size()));
  for (uint64_t id : gone) w.U64(id);
}

Result<MapChanges> MapChanges::Decode(ByteSpan body) {
  Reader r(body);
  MapChanges m;
  uint32_t n = r.Count(4, kMaxWatchedRegions, "map");
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ByteSpan blob = r.Blob();
    if (!r.ok()) break;
    Result<RegionInfo> info = RegionInfo::Decode(blob);
    if (!info.ok()) return info.status().With("c2ctl::MapChanges");
    m.maps.push_back(std::move(*info));
  }
  m.gone.resize(r.Count(8, kMaxWatchedRegions, "gone region"));
  for (uint64_t& id : m.gone) id = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::MapChanges"));
  return m;
}

Result<WatchMaps> WatchMaps::Decode(ByteSpan body) {
  Reader r(body);
  WatchMaps m;
  m.hold_ms = r.U32();
  if (m.hold_ms > kMaxWatchHoldMs) r.Fail("hold of " + std::to_string(m.hold_ms) + " ms");
  m.regions.resize(r.Count(16, kMaxWatchedRegions, "region"));
  for (WatchedRegion& w : m.regions) {
    w.id = r.U64();
    w.epoch = r.U64();
  }
  TS_RETURN_IF_ERROR(r.Finish("c2ctl::WatchMaps"));
  return m;
}

}  // namespace tessera::proto::c2ctl
