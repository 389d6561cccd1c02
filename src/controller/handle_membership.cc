
#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"
#include "controller/handlers.h"
#include "controller/repair.h"
#include "proto/m2ctl.h"

namespace tessera::controller {

void HandleRegister(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::m2ctl::Register::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  auto& nodes = ctx.state.nodes();
  NodeRecord n;
  auto it = m->node_id == 0 ? nodes.end() : nodes.find(m->node_id);
  if (it != nodes.end()) {
    n = it->second;
    if (n.incarnation != m->incarnation) {
      log::Warn("memory node {} ({}) restarted: the fragments it held are gone", n.id, m->addr);
    }
  } else {
    auto id = ctx.state.NewNodeId();
    if (!id.ok()) return proto::AppendErrorReply(req, id.status(), out);
    n.id = *id;
  }
  n.addr = m->addr;
  n.capacity = m->capacity;
  n.incarnation = m->incarnation;
  n.domain = m->domain;
  n.reported_used = m->used;
  n.last_heartbeat_ns = n.registered_ns = NowNanos();
  Status s = ctx.state.PutNode(n);
  if (!s.ok()) return proto::AppendErrorReply(req, s, out);
  ctx.conns.erase(n.id);  // its address may have changed
  log::Info("memory node {} at {} registered with {}", n.id, n.addr, FormatSize(n.capacity));
  proto::m2ctl::RegisterReply reply{.node_id = n.id};
  for (const std::string& e : ctx.options.etcd) reply.etcd += (reply.etcd.empty() ? "" : ",") + e;
  if (!reply.etcd.empty()) reply.lease_ttl_s = static_cast<uint32_t>(ctx.options.member_ttl_s);
  proto::AppendReply(req, reply, out);
}

void HandleHeartbeat(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::m2ctl::Heartbeat::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  auto it = ctx.state.nodes().find(m->node_id);
  bool known = it != ctx.state.nodes().end() && it->second.incarnation == m->incarnation;
  if (known) {
    NodeRecord& n = it->second;
    uint64_t now = NowNanos();
    const bool was_alive = ctx.Alive(n, now);
    n.last_heartbeat_ns = now;
    n.reported_used = m->used;
    n.rss = m->rss;
    // With etcd, heartbeats do not make a node alive: its membership key does.
    if (ctx.Alive(n, now)) {
      if (!was_alive) log::Info("memory node {} at {} is back", n.id, n.addr);
      Rejoin(ctx, n.id);
    }
  }
  proto::AppendReply(req, proto::m2ctl::HeartbeatReply{known}, out);
}

}  // namespace tessera::controller
