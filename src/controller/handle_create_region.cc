// c2ctl::CreateRegion and c2ctl::CloneRegion. The region record is persisted
// as "creating" before any memory node allocates, and as "ready" after all of
// them have: a controller that crashes in between finds the "creating" record
// on restart and frees whatever was allocated (Controller::Recover), so no
// region is ever half-made.
//
// A clone is placed exactly where its source is, so that every node copies
// its own fragments (ctl2m::CloneFragments) and no page crosses the network.
// A source fragment that is not ready on a live node cannot be copied: the
// clone's is marked lost, and rebuild restores it as it does the source's.

#include <functional>

#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"
#include "controller/handlers.h"
#include "controller/placement.h"
#include "proto/c2ctl.h"
#include "proto/ctl2m.h"

namespace tessera::controller {
namespace {

constexpr uint64_t kMaxFragments = 1u << 20;

Status ValidateName(const std::string& name) {
  if (name.empty() || name.size() > 128) return InvalidArgument("region name must be 1 to 128 characters");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return InvalidArgument("region name '" + name + "' may contain only letters, digits, '-', '_' and '.'");
    }
  }
  return Status::Ok();
}

// Chooses nodes for every fragment of `r` among the live nodes.
Status Place(Context& ctx, RegionRecord* r) {
  std::vector<NodeSlot> space = ctx.LiveNodeSpace();
  if (space.empty()) return Unavailable("no live memory nodes: start some with 'tessera memnode' or 'tessera up'");
  TS_ASSIGN_OR_RETURN(r->fragment_nodes,
                      PlaceStripes(space, r->width(), r->stripe_count(), r->FragmentBytes(0)));
  r->fragment_states.assign(r->fragment_nodes.size(), RegionRecord::FragmentState::kReady);
  return Status::Ok();
}

// Sends each node its request; the first failure, naming the node, stops it.
template <typename Req>
Status SendToEach(Context& ctx, const std::map<uint64_t, Req>& per_node) {
  for (const auto& [node, req] : per_node) {
    if (Status s = ctx.CallNode(node, req, ctx.options.memnode_timeout_ms); !s.ok()) {
      return s.With("memory node " + std::to_string(node) + " (" + ctx.state.nodes()[node].addr + ")");
    }
  }
  return Status::Ok();
}

// Asks each chosen node to allocate its fragments; all or nothing.
Status AllocateOnNodes(Context& ctx, const RegionRecord& r) {
  std::map<uint64_t, proto::ctl2m::AllocFragments> per_node;
  for (uint32_t f = 0; f < r.fragment_count(); ++f) {
    auto& req = per_node[r.fragment_nodes[f]];
    req.region = r.id;
    req.epoch = r.epoch;
    req.fragments.push_back({f, r.StripePages(f / r.width()), r.slot_size()});
  }
  return SendToEach(ctx, per_node);
}

// Asks each node of the clone `r` to copy its fragments from `source`.
Status CloneOnNodes(Context& ctx, const RegionRecord& r, uint64_t source) {
  std::map<uint64_t, proto::ctl2m::CloneFragments> per_node;
  for (uint32_t f = 0; f < r.fragment_count(); ++f) {
    if (r.fragment_states[f] != RegionRecord::FragmentState::kReady) continue;
    auto& req = per_node[r.fragment_nodes[f]];
    req.region = r.id;
    req.epoch = r.epoch;
    req.source = source;
    req.fragments.push_back(f);
  }
  return SendToEach(ctx, per_node);
}

// Persists `r` as creating, has `allocate` make its fragments, and persists
// it ready; on failure frees what was made and forgets the record.
Status Materialize(Context& ctx, RegionRecord& r, const std::function<Status()>& allocate) {
  r.state = RegionState::kCreating;
  TS_RETURN_IF_ERROR(ctx.state.PutRegion(r));
  Status s = allocate();
  if (s.ok()) {
    r.state = RegionState::kReady;
    s = ctx.state.PutRegion(r);  // fails if the store stopped taking writes meanwhile
    if (s.ok()) return s;
  }
  Status undo = FreeRegionOnNodes(ctx, r);
  if (undo.ok()) undo = ctx.state.DeleteRegion(r.name);
  if (!undo.ok()) {
    // The store keeps a "creating" record: a new create of the name
    // overwrites it, and a restart's recovery removes it.
    ctx.state.Forget(r.name);
    if (!ctx.state.store_failing()) log::Warn("region '{}' left in state creating: {}", r.name, undo.ToString());
  }
  return s;
}

Result<RegionRecord> Clone(Context& ctx, const proto::c2ctl::CloneRegion& m) {
  TS_RETURN_IF_ERROR(ValidateName(m.name));
  if (ctx.state.regions().count(m.name)) return AlreadyExists("a region named '" + m.name + "' already exists");
  auto src = ctx.state.regions().find(m.source);
  if (src == ctx.state.regions().end()) return NotFound("no region named '" + m.source + "'");
  if (src->second.state != RegionState::kReady) return Unavailable("region '" + m.source + "' is not ready");
  RegionRecord r = src->second;
  r.name = m.name;
  r.epoch = 1;
  r.lease_ms = m.lease_ms;
  const uint64_t now = NowNanos();
  for (uint32_t f = 0; f < r.fragment_count(); ++f) {
    if (!ctx.NodeAlive(r.fragment_nodes[f], now)) r.fragment_states[f] = RegionRecord::FragmentState::kLost;
    if (r.fragment_states[f] != RegionRecord::FragmentState::kReady) {
      r.fragment_states[f] = RegionRecord::FragmentState::kLost;
    }
  }
  TS_ASSIGN_OR_RETURN(r.id, ctx.state.NewRegionId());
  const uint64_t source = src->second.id;
  TS_RETURN_IF_ERROR(Materialize(ctx, r, [&] { return CloneOnNodes(ctx, r, source); }));
  if (r.lease_ms > 0) ctx.lease_renewed_ns[r.name] = NowNanos();
  log::Info("cloned region '{}' as '{}' (id {})", m.source, r.name, r.id);
  return r;
}

Result<RegionRecord> Create(Context& ctx, const proto::c2ctl::CreateRegion& m) {
  TS_RETURN_IF_ERROR(ValidateName(m.name));
  if (ctx.state.regions().count(m.name)) return AlreadyExists("a region named '" + m.name + "' already exists");
  if (m.size_bytes == 0) return InvalidArgument("region size must be at least one byte");
  RegionRecord r;
  r.name = m.name;
  r.page_size = m.page_size;
  r.num_pages = (m.size_bytes + m.page_size - 1) / m.page_size;
  r.pages_per_stripe = ctx.options.pages_per_stripe;
  r.redundancy = m.redundancy;
  r.lease_ms = m.lease_ms;
  if (r.stripe_count() * static_cast<uint64_t>(r.width()) > kMaxFragments) {
    return InvalidArgument("region of " + FormatSize(m.size_bytes) + " exceeds the limit of " +
                           FormatSize(kMaxFragments / r.width() * r.pages_per_stripe * r.page_size));
  }
  TS_RETURN_IF_ERROR(Place(ctx, &r));
  TS_ASSIGN_OR_RETURN(r.id, ctx.state.NewRegionId());
  TS_RETURN_IF_ERROR(Materialize(ctx, r, [&] { return AllocateOnNodes(ctx, r); }));
  if (r.lease_ms > 0) ctx.lease_renewed_ns[r.name] = NowNanos();
  log::Info("created region '{}' (id {}, {}, {}, {} fragments)", r.name, r.id,
            FormatSize(r.num_pages * r.page_size), r.redundancy.ToString(), r.fragment_count());
  return r;
}

}  // namespace

void HandleCreateRegion(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::CreateRegion::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  Result<RegionRecord> r = Create(ctx, *m);
  if (!r.ok()) return proto::AppendErrorReply(req, r.status().With("create region '" + m->name + "'"), out);
  proto::AppendReply(req, RegionInfoOf(ctx, *r), out);
}

void HandleCloneRegion(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::CloneRegion::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  Result<RegionRecord> r = Clone(ctx, *m);
  if (!r.ok()) {
    return proto::AppendErrorReply(req, r.status().With("clone region '" + m->source + "' as '" + m->name + "'"), out);
  }
  proto::AppendReply(req, RegionInfoOf(ctx, *r), out);
}

}  // namespace tessera::controller
