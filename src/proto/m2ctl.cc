#include "proto/m2ctl.h"

namespace tessera::proto::m2ctl {

Result<RegisterReply> RegisterReply::Decode(ByteSpan body) {
  Reader r(body);
  RegisterReply m;
  m.node_id = r.U64();
  m.etcd = r.String();
  m.lease_ttl_s = r.U32();
  m.cluster_id = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("m2ctl::RegisterReply"));
  if (m.node_id == 0) return ProtocolError("m2ctl::RegisterReply: node id 0");
  if (m.cluster_id == 0) return ProtocolError("m2ctl::RegisterReply: cluster id 0");
  if (!m.etcd.empty() && m.lease_ttl_s == 0) return ProtocolError("m2ctl::RegisterReply: a lease of 0 s");
  return m;
}

void Register::Encode(Writer& w) const {
  w.U64(node_id);
  w.U64(incarnation);
  w.String(addr);
  w.U64(capacity);
  w.U64(used);
  w.String(domain);
  w.U64(cluster_id);
}

Result<Register> Register::Decode(ByteSpan body) {
  Reader r(body);
  Register m;
  m.node_id = r.U64();
  m.incarnation = r.U64();
  m.addr = r.String();
  m.capacity = r.U64();
  m.used = r.U64();
  m.domain = r.String();
  m.cluster_id = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("m2ctl::Register"));
  if (m.addr.empty()) return ProtocolError("m2ctl::Register: empty address");
  return m;
}

Result<HeartbeatReply> HeartbeatReply::Decode(ByteSpan body) {
  Reader r(body);
  HeartbeatReply m;
  uint8_t known = r.U8();
  if (known > 1) r.Fail("known flag " + std::to_string(known));
  m.known = known == 1;
  TS_RETURN_IF_ERROR(r.Finish("m2ctl::HeartbeatReply"));
  return m;
}

void Heartbeat::Encode(Writer& w) const {
  w.U64(node_id);
  w.U64(incarnation);
  w.U64(used);
  w.U64(rss);
  w.U64(cluster_id);
}

Result<Heartbeat> Heartbeat::Decode(ByteSpan body) {
  Reader r(body);
  Heartbeat m;
  m.node_id = r.U64();
  m.incarnation = r.U64();
  m.used = r.U64();
  m.rss = r.U64();
  m.cluster_id = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("m2ctl::Heartbeat"));
  return m;
}

}  // namespace tessera::proto::m2ctl
