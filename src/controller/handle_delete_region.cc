#include <spdlog/spdlog.h>

#include <set>

#include "common/clock.h"
#include "controller/handlers.h"
#include "net/rpc.h"
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
      spdlog::info("region '{}': memory node {} is down; nothing to free there", r.name, node);
      continue;
    }
    Result<net::Connection*> conn = ctx.ConnectTo(node);
    Status s = conn.status();
    if (s.ok()) {
      s = net::Call(*ctx.transport, **conn, proto::ctl2m::FreeRegion{r.id}, ctx.options.memnode_timeout_ms).status();
    }
    if (!s.ok() && first_error.ok()) {
      first_error = s.With("free region on memory node " + std::to_string(node));
    }
  }
  return first_error;
}

void HandleDeleteRegion(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::DeleteRegion::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  auto it = ctx.state.regions().find(m->name);
  if (it == ctx.state.regions().end()) {
    return proto::AppendErrorReply(req, NotFound("no region named '" + m->name + "'"), out);
  }
  RegionRecord r = it->second;
  r.state = RegionState::kDeleting;
  Status s = ctx.state.PutRegion(r);
  if (s.ok()) s = FreeRegionOnNodes(ctx, r);
  if (s.ok()) s = ctx.state.DeleteRegion(r.name);
  if (!s.ok()) {
    // The record stays (state "deleting") so that a retry frees the rest.
    return proto::AppendErrorReply(req, s.With("delete region '" + r.name + "' (run it again to retry)"), out);
  }
  spdlog::info("deleted region '{}' (id {})", r.name, r.id);
  proto::AppendReply(req, proto::Empty{}, out);
}

}  // namespace tessera::controller
