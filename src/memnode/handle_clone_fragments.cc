#include "memnode/handlers.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {

void HandleCloneFragments(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                          proto::Bytes* out) {
  Result<proto::ctl2m::CloneFragments> m = proto::ctl2m::CloneFragments::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  Status s = store.Clone(m->region, m->epoch, m->source, m->fragments);
  if (!s.ok()) return proto::AppendErrorReply(req, s, out);
  proto::AppendReply(req, proto::Empty{}, out);
}

}  // namespace tessera::memnode
