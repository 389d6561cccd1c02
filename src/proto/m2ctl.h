// m2ctl: messages from a memory node to the controller — membership.
//
//   Register       = node_id:u64 incarnation:u64 addr:string capacity:u64 used:u64
//                    domain:string
//   RegisterReply  = node_id:u64 etcd:string lease_ttl_s:u32
//   Heartbeat      = node_id:u64 incarnation:u64 used:u64 rss:u64
//   HeartbeatReply = known:u8
//
// A node registers with node_id 0 the first time and gets an id; it sends that
// id again after a controller restart so the controller, which persisted it,
// recognises the node. incarnation is random per process start: the same id
// with a new incarnation is a node that restarted and lost its memory.
// known = 0 tells a node to register again. domain is the node's failure
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
  void Encode(Writer& w) const {
    w.U64(node_id);
    w.String(etcd);
    w.U32(lease_ttl_s);
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
  void Encode(Writer& w) const;
  static Result<Heartbeat> Decode(ByteSpan body);
};

}  // namespace tessera::proto::m2ctl
