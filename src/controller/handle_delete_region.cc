
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "controller/handlers.h"
#include "proto/c2ctl.h"
#include "proto/ctl2m.h"

namespace tessera::controller {

Status FreeRegionOnNodes(Context& ctx, const RegionRecord& r) {
  std::set<uint64_t> holders(r.fragment_nodes.begin(), r.fragment_nodes.end());
  Status first_error;
  uint64_t now = NowNanos();
  for (uint64_t node : holders) {
    if (!ctx.NodeAlive(node, now)) {
      // A dead node's memory went with it. One that was only cut off still
      // holds the fragments; Rejoin() clears a node that comes back.
      log::Info("region '{}': memory node {} is down; nothing to free there", r.name, node);
      continue;
    }
    Status s = ctx.CallNode(node, proto::ctl2m::FreeRegion{r.id}, ctx.options.memnode_timeout_ms);
    if (!s.ok() && first_error.ok()) {
      first_error = s.With("free region on memory node " + std::to_string(node));
    }
  }
  return first_error;
}

namespace {

// Deletes `r` everywhere; on failure its record stays, "deleting", for a retry.
Status Delete(Context& ctx, RegionRecord r) {
  r.state = RegionState::kDeleting;
  Status s = ctx.state.PutRegion(r);
  if (s.ok()) s = FreeRegionOnNodes(ctx, r);
  if (s.ok()) s = ctx.state.DeleteRegion(r.name);
  if (s.ok()) ctx.lease_renewed_ns.erase(r.name);
  return s;
}

}  // namespace

void HandleDeleteRegion(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::DeleteRegion::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  auto it = ctx.state.regions().find(m->name);
  if (it == ctx.state.regions().end()) {
    return proto::AppendErrorReply(req, NotFound("no region named '" + m->name + "'"), out);
  }
  RegionRecord r = it->second;
  if (Status s = Delete(ctx, r); !s.ok()) {
    return proto::AppendErrorReply(req, s.With("delete region '" + r.name + "' (run it again to retry)"), out);
  }
  log::Info("deleted region '{}' (id {})", r.name, r.id);
  proto::AppendReply(req, proto::Empty{}, out);
}

void HandleRenewLeases(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::RenewLeases::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  const uint64_t now = NowNanos();
  std::string missing;
  for (const std::string& name : m->names) {
    auto it = ctx.state.regions().find(name);
    if (it == ctx.state.regions().end()) {
      missing += (missing.empty() ? "'" : ", '") + name + "'";
    } else if (it->second.lease_ms > 0) {
      ctx.lease_renewed_ns[name] = now;
    }
  }
  if (!missing.empty()) return proto::AppendErrorReply(req, NotFound("no region named " + missing), out);
  proto::AppendReply(req, proto::Empty{}, out);
}

void ExpireLeases(Context& ctx) {
  const uint64_t now = NowNanos();
  std::vector<RegionRecord> expired;
  for (const auto& [name, r] : ctx.state.regions()) {
    if (r.lease_ms == 0 || r.state != RegionState::kReady || name == ctx.rebuild_region) continue;
    auto [it, fresh] = ctx.lease_renewed_ns.try_emplace(name, now);  // a restarted controller's grace
    if (!fresh && now - it->second > uint64_t{r.lease_ms} * 1'000'000) expired.push_back(r);
  }
  for (const RegionRecord& r : expired) {
    Status s = Delete(ctx, r);
    if (s.ok()) {
      log::Info("region '{}' (id {}): its lease of {} ms ran out; deleted", r.name, r.id, r.lease_ms);
    } else {
      log::Warn("region '{}': its lease ran out, and deleting it failed (will retry): {}", r.name, s.ToString());
    }
  }
}

}  // namespace tessera::controller
