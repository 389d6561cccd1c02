#include "memnode/handlers.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {

void HandleFreeRegion(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                      proto::Bytes* out) {
  Result<proto::ctl2m::FreeRegion> m = proto::ctl2m::FreeRegion::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  proto::AppendReply(req, proto::ctl2m::FreeRegionReply{store.FreeRegion(m->region)}, out);
}

}  // namespace tessera::memnode
