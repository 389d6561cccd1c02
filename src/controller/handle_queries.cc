#include "common/clock.h"
#include <set>

#include "controller/handlers.h"
#include "proto/c2ctl.h"

namespace tessera::controller {
namespace {

proto::c2ctl::RegionSummary SummaryOf(const RegionRecord& r) {
  std::set<uint64_t> holders(r.fragment_nodes.begin(), r.fragment_nodes.end());
  return {r.id, r.name, r.page_size, r.num_pages, static_cast<uint16_t>(holders.size())};
}

proto::c2ctl::RegionList ListReady(Context& ctx) {
  proto::c2ctl::RegionList list;
  for (auto& [name, r] : ctx.state.regions()) {
    if (r.state == RegionState::kReady) list.regions.push_back(SummaryOf(r));
  }
  return list;
}

}  // namespace

proto::c2ctl::RegionInfo RegionInfoOf(Context& ctx, const RegionRecord& r) {
  proto::c2ctl::RegionInfo info{.id = r.id, .name = r.name, .page_size = r.page_size, .num_pages = r.num_pages,
                                .pages_per_fragment = r.pages_per_fragment};
  std::map<uint64_t, uint16_t> index;
  for (uint64_t node : r.fragment_nodes) {
    auto [it, fresh] = index.emplace(node, static_cast<uint16_t>(info.nodes.size()));
    if (fresh) info.nodes.push_back({node, ctx.state.nodes()[node].addr});
    info.fragment_nodes.push_back(it->second);
  }
  return info;
}

void HandleOpenRegion(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::OpenRegion::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  auto it = ctx.state.regions().find(m->name);
  if (it == ctx.state.regions().end() || it->second.state != RegionState::kReady) {
    return proto::AppendErrorReply(req, NotFound("no region named '" + m->name + "'"), out);
  }
  proto::AppendReply(req, RegionInfoOf(ctx, it->second), out);
}

void HandleListRegions(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::ListRegions::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  proto::AppendReply(req, ListReady(ctx), out);
}

void HandleClusterStatus(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::ClusterStatus::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  proto::c2ctl::ClusterStatusReply reply;
  uint64_t now = NowNanos();
  auto allocated = ctx.state.AllocatedByNode();
  for (auto& [id, n] : ctx.state.nodes()) {
    uint64_t ago_ms = (now - n.last_heartbeat_ns) / 1'000'000;
    reply.nodes.push_back({.id = id, .addr = n.addr, .capacity = n.capacity, .used = allocated[id], .rss = n.rss,
                           .alive = ctx.Alive(n, now),
                           .ms_since_heartbeat = static_cast<uint32_t>(std::min<uint64_t>(ago_ms, UINT32_MAX))});
  }
  reply.regions = ListReady(ctx);
  proto::AppendReply(req, reply, out);
}

}  // namespace tessera::controller
