// m2ctl: messages from a memory node to the controller — membership.
//
//   Register       = node_id:u64 incarnation:u64 addr:string capacity:u64 used:u64
//                    domain:string
//   RegisterReply  = node_id:u64
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
  void Encode(Writer& w) const { w.U64(node_id); }
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
