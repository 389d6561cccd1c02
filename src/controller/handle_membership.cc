#include <cinttypes>
#include <cstdio>

#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"
#include "controller/handlers.h"
#include "controller/repair.h"
#include "proto/m2ctl.h"

namespace tessera::controller {
namespace {

std::string Hex(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, id);
  return buf;
}

// Whether `m` changes what the store keeps of node `n`.
bool Changes(const NodeRecord& n, const proto::m2ctl::Register& m) {
  return n.addr != m.addr || n.capacity != m.capacity || n.incarnation != m.incarnation || n.domain != m.domain;
}

}  // namespace

void HandleRegister(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::m2ctl::Register::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  const uint64_t cluster = ctx.state.cluster_id();
  auto& nodes = ctx.state.nodes();
  auto it = m->node_id == 0 ? nodes.end() : nodes.find(m->node_id);
  // A node id means something only in its own cluster, and only while the
  // store has it on record: otherwise the node is told to start afresh (it
  // drops what it holds), and its id is never given to anyone else meanwhile.
  if (m->node_id != 0 && (m->cluster_id != cluster || it == nodes.end())) {
    const std::string why =
        m->cluster_id != cluster
            ? "memory node " + std::to_string(m->node_id) + " at " + m->addr + " belongs to cluster " +
                  Hex(m->cluster_id) + ", and this controller leads cluster " + Hex(cluster) +
                  " (its control-plane store is new, or another cluster's)"
            : "memory node " + std::to_string(m->node_id) + " at " + m->addr + " is not on record in cluster " +
                  Hex(cluster) + " (its control-plane store is older than the node)";
    log::Warn("{}: it is told to drop what it holds and join as a new node", why);
    return proto::AppendErrorReply(req, WrongCluster(why), out);
  }
  NodeRecord n;
  const bool fresh = it == nodes.end();
  if (!fresh) {
    n = it->second;
    if (n.incarnation != m->incarnation) {
      // It lost its memory (a new process, or it dropped everything): its
      // fragments are gone whatever the maps say until they are marked so.
      DeclareDead(ctx, n.id, "it came back as a new incarnation: the fragments it held are gone");
    }
  } else {
    auto id = ctx.state.NewNodeId();
    if (!id.ok()) return proto::AppendErrorReply(req, id.status().With("register a new memory node"), out);
    n.id = *id;
  }
  const bool changed = fresh || Changes(n, *m);
  n.addr = m->addr;
  n.capacity = m->capacity;
  n.incarnation = m->incarnation;
  n.domain = m->domain;
  n.reported_used = m->used;
  n.last_heartbeat_ns = n.registered_ns = NowNanos();
  if (changed) {
    // Only what the store keeps needs a write: a known node registering
    // again as it was (after a controller restart) is served from memory,
    // even while the store takes no writes.
    Status s = ctx.state.PutNode(n);
    if (!s.ok()) return proto::AppendErrorReply(req, s.With("record memory node " + std::to_string(n.id)), out);
    ctx.conns.erase(n.id);  // its address may have changed
    log::Info("memory node {} at {} registered with {}", n.id, n.addr, FormatSize(n.capacity));
  } else {
    nodes[n.id] = n;
  }
  proto::m2ctl::RegisterReply reply{.node_id = n.id, .cluster_id = cluster};
  for (const std::string& e : ctx.options.etcd) reply.etcd += (reply.etcd.empty() ? "" : ",") + e;
  if (!reply.etcd.empty()) reply.lease_ttl_s = static_cast<uint32_t>(ctx.options.member_ttl_s);
  proto::AppendReply(req, reply, out);
}

void HandleHeartbeat(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::m2ctl::Heartbeat::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  auto it = ctx.state.nodes().find(m->node_id);
  bool known = m->cluster_id == ctx.state.cluster_id() && it != ctx.state.nodes().end() &&
               it->second.incarnation == m->incarnation;
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
