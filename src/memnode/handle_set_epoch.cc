#include "memnode/handlers.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {

void HandleSetEpoch(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  Result<proto::ctl2m::SetEpoch> m = proto::ctl2m::SetEpoch::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  store.RaiseEpoch(m->region, m->epoch);
  proto::AppendReply(req, proto::Empty{}, out);
}

}  // namespace tessera::memnode
