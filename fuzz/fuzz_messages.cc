// Runs every message decoder on arbitrary bodies. The first byte picks the
// decoder; the rest is the body. A decoder may accept or reject, but must not
// crash, over-read or allocate from an unchecked length; whatever it accepts
// must re-encode to exactly the bytes it came from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/c2ctl.h"
#include "proto/c2m.h"
#include "proto/ctl2m.h"
#include "proto/frame.h"
#include "proto/m2ctl.h"

namespace {

using tessera::proto::ByteSpan;
using tessera::proto::Bytes;

template <typename M>
void RoundTrip(ByteSpan body) {
  auto m = M::Decode(body);
  if (!m.ok()) return;
  Bytes again;
  tessera::proto::Writer w(&again);
  m->Encode(w);
  if (again.size() != body.size() || !std::equal(again.begin(), again.end(), body.begin())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera::proto;
  if (size == 0) return 0;
  ByteSpan body(data + 1, size - 1);
  switch (data[0] % 19) {
    case 0: RoundTrip<c2m::ReadPages>(body); break;
    case 1: RoundTrip<c2m::ReadPagesReply>(body); break;
    case 2: RoundTrip<c2m::WritePages>(body); break;
    case 3: RoundTrip<ctl2m::AllocFragments>(body); break;
    case 4: RoundTrip<ctl2m::FreeRegion>(body); break;
    case 14: RoundTrip<ctl2m::SetEpoch>(body); break;
    case 18: RoundTrip<ctl2m::FreeFragments>(body); break;
    case 15: RoundTrip<c2m::WritePagesReply>(body); break;
    case 5: RoundTrip<ctl2m::FreeRegionReply>(body); break;
    case 6: RoundTrip<m2ctl::Register>(body); break;
    case 7: RoundTrip<m2ctl::Heartbeat>(body); break;
    case 8: RoundTrip<c2ctl::CreateRegion>(body); break;
    case 9: RoundTrip<c2ctl::RegionInfo>(body); break;
    case 10: RoundTrip<c2ctl::ClusterStatusReply>(body); break;
    case 11: RoundTrip<c2ctl::OpenRegion>(body); break;
    case 12: RoundTrip<c2ctl::RegionList>(body); break;
    case 16: RoundTrip<c2ctl::WatchMaps>(body); break;
    case 17: RoundTrip<c2ctl::MapChanges>(body); break;
    case 13:
      if (size >= kHeaderSize) (void)DecodeHeader(ByteSpan(data, kHeaderSize));
      (void)ReplyStatus(FrameHeader{.opcode = 0x81, .status = data[0]}, body);
      break;
  }
  return 0;
}
