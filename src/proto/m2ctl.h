// m2ctl: messages from a memory node to the controller — membership.
//
//   Register       = node_id:u64 incarnation:u64 addr:string capacity:u64 used:u64
//                    domain:string cluster_id:u64
//   RegisterReply  = node_id:u64 etcd:string lease_ttl_s:u32 cluster_id:u64
//   Heartbeat      = node_id:u64 incarnation:u64 used:u64 rss:u64 cluster_id:u64
//   HeartbeatReply = known:u8
//
// A cluster has an id, made at the first start of its control-plane store and
// kept there (never 0); a node id means something only within its cluster.
// A node registers with node_id 0 and cluster_id 0 the first time and gets an
// id and the cluster's id; it sends both again after a controller restart so
// the controller, which persisted them, recognises the node. A node of another
// cluster (the controller's store is new, or another cluster's), or whose id
// its cluster has no record of, is answered "wrong cluster": it drops every
// fragment it holds and registers afresh, as a new node — a controller never
// hands a running node's id to another. incarnation is random per process
// start (and per rejoin): the same id with a new incarnation is a node that
// lost its memory. known = 0 tells a node to register again.
// RegisterReply's cluster_id is never 0. domain is the node's failure
// domain label (rack, host, power feed); empty: the node is a domain alone.
//
// etcd, when not empty, is the cluster's store ("host:port,..."): the node
// then holds its membership there, a key under a lease of lease_ttl_s
// seconds (memnode/membership.h), and is dead to the cluster when the lease
// expires. Empty: membership by heartbeats (the embedded store).
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "proto/opcode.h"
#include "proto/wire.h"

namespace tessera::proto::m2ctl {

struct RegisterReply {
  uint64_t node_id = 0;
  std::string etcd;
  uint32_t lease_ttl_s = 0;
  uint64_t cluster_id = 0;
  void Encode(Writer& w) const {
    w.U64(node_id);
    w.String(etcd);
    w.U32(lease_ttl_s);
    w.U64(cluster_id);
  }
  static Result<RegisterReply> Decode(ByteSpan body);
};

struct Register {
  static constexpr Op kOp = Op::kM2ctlRegister;
  using Reply = RegisterReply;
  uint64_t node_id = 0;
  uint64_t incarnation = 0;
  std::string addr;
  uint64_t capacity = 0;
  uint64_t used = 0;
  std::string domain;
  uint64_t cluster_id = 0;  // 0: none yet
  void Encode(Writer& w) const;
  static Result<Register> Decode(ByteSpan body);
};

struct HeartbeatReply {
  bool known = false;
  void Encode(Writer& w) const { w.U8(known ? 1 : 0); }
  static Result<HeartbeatReply> Decode(ByteSpan body);
};

struct Heartbeat {
  static constexpr Op kOp = Op::kM2ctlHeartbeat;
  using Reply = HeartbeatReply;
  uint64_t node_id = 0;
  uint64_t incarnation = 0;
  uint64_t used = 0;
  uint64_t rss = 0;
  uint64_t cluster_id = 0;
  void Encode(Writer& w) const;
  static Result<Heartbeat> Decode(ByteSpan body);
};

}  // namespace tessera::proto::m2ctl
