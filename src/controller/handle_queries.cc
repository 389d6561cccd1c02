#include "common/clock.h"
#include <set>

#include "controller/handlers.h"
#include "proto/c2ctl.h"

namespace tessera::controller {
namespace {

using proto::c2ctl::FragmentState;
using proto::c2ctl::Health;

proto::c2ctl::RegionSummary SummaryOf(Context& ctx, const RegionRecord& r) {
  std::set<uint64_t> holders(r.fragment_nodes.begin(), r.fragment_nodes.end());
  proto::c2ctl::RegionSummary s{.id = r.id, .name = r.name, .page_size = r.page_size, .num_pages = r.num_pages,
                                .node_count = static_cast<uint16_t>(holders.size()),
                                .redundancy = r.redundancy, .stripes = r.stripe_count()};
  const int w = r.width();
  for (uint64_t stripe = 0; stripe < s.stripes; ++stripe) {
    int missing = 0;
    for (int j = 0; j < w; ++j) {
      uint64_t f = stripe * w + j;
      missing += FragmentOf(ctx, r, f) != FragmentState::kReady;
    }
    if (missing > r.redundancy.m) {
      ++s.lost_stripes;
    } else if (missing > 0) {
      ++s.degraded_stripes;
    }
  }
  s.health = s.lost_stripes > 0 ? Health::kLost : s.degraded_stripes > 0 ? Health::kDegraded : Health::kHealthy;
  if (ctx.rebuild && ctx.rebuild_region == r.name) {
    if (s.health == Health::kDegraded) s.health = Health::kRebuilding;
    s.rebuild_done = ctx.rebuild->done_bytes();
    s.rebuild_total = ctx.rebuild->total_bytes();
    s.rebuild_bytes_per_s = ctx.rebuild->bytes_per_second();
  }
  return s;
}

proto::c2ctl::RegionList ListReady(Context& ctx) {
  proto::c2ctl::RegionList list;
  for (auto& [name, r] : ctx.state.regions()) {
    if (r.state == RegionState::kReady) list.regions.push_back(SummaryOf(ctx, r));
  }
  return list;
}

}  // namespace

FragmentState FragmentOf(Context& ctx, const RegionRecord& r, uint64_t f) {
  // Declared dead but not yet recorded (the store took no write): lost.
  const uint64_t node = r.fragment_nodes[f];
  if (ctx.declared_dead.contains(node) || !ctx.state.nodes().contains(node)) return FragmentState::kLost;
  return r.fragment_states[f];
}

proto::c2ctl::RegionInfo RegionInfoOf(Context& ctx, const RegionRecord& r) {
  proto::c2ctl::RegionInfo info{.id = r.id, .name = r.name, .page_size = r.page_size, .num_pages = r.num_pages,
                                .pages_per_stripe = r.pages_per_stripe, .redundancy = r.redundancy,
                                .epoch = r.epoch};
  std::map<uint64_t, uint16_t> index;
  for (uint64_t f = 0; f < r.fragment_nodes.size(); ++f) {
    uint64_t node = r.fragment_nodes[f];
    auto [it, fresh] = index.emplace(node, static_cast<uint16_t>(info.nodes.size()));
    if (fresh) info.nodes.push_back({node, ctx.state.nodes()[node].addr});
    info.fragment_nodes.push_back(it->second);
    info.fragment_states.push_back(FragmentOf(ctx, r, f));
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
                           .alive = ctx.NodeAlive(id, now),
                           .ms_since_heartbeat = static_cast<uint32_t>(std::min<uint64_t>(ago_ms, UINT32_MAX))});
  }
  reply.regions = ListReady(ctx);
  proto::AppendReply(req, reply, out);
}

}  // namespace tessera::controller
