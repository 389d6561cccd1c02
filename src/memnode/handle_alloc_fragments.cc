#include "memnode/handlers.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {

void HandleAllocFragments(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                          proto::Bytes* out) {
  Result<proto::ctl2m::AllocFragments> m = proto::ctl2m::AllocFragments::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  Status s = store.Allocate(m->region, m->epoch, m->fragments);
  if (!s.ok()) return proto::AppendErrorReply(req, s, out);
  proto::AppendReply(req, proto::Empty{}, out);
}

}  // namespace tessera::memnode
