#include "memnode/handlers.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {

void HandleFreeFragments(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                         proto::Bytes* out) {
  Result<proto::ctl2m::FreeFragments> m = proto::ctl2m::FreeFragments::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  proto::AppendReply(req, proto::ctl2m::FreeRegionReply{store.FreeFragments(m->region, m->fragments)}, out);
}

}  // namespace tessera::memnode
