// Runs arbitrary frames through a memory node's request dispatch, against a
// store holding one region. Whatever arrives, the node must answer with
// exactly one well-formed reply frame, never crash, and never write outside
// the fragment a request names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>

#include "memnode/handlers.h"
#include "proto/ctl2m.h"
#include "proto/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static memnode::FragmentStore* store = [] {
    auto* s = new memnode::FragmentStore(1 << 20);
    proto::ctl2m::FragmentSpec specs[] = {{0, 4, 4096}, {2, 4, 4096}};
    if (!s->Allocate(1, 0, specs).ok()) std::abort();
    return s;
  }();
  if (size < 1) return 0;
  using Handler = void (*)(memnode::FragmentStore&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
  static const Handler kHandlers[] = {memnode::HandleReadPages, memnode::HandleWritePages,
                                      memnode::HandleAllocFragments, memnode::HandleFreeRegion,
                                      memnode::HandleSetEpoch, memnode::HandleCloneFragments,
                                      memnode::HandleFreeFragments};
  Handler h = kHandlers[data[0] % std::size(kHandlers)];
  // Keep region 1 alive so reads and writes reach real memory.
  if (h == memnode::HandleFreeRegion || h == memnode::HandleAllocFragments || h == memnode::HandleFreeFragments) {
    if (size >= 9 && data[1] == 1) return 0;
  }
  proto::FrameHeader req{.opcode = 1, .request_id = 77};
  proto::Bytes out;
  h(*store, req, proto::ByteSpan(data + 1, size - 1), &out);
  if (out.size() < proto::kHeaderSize) std::abort();
  auto reply = proto::DecodeHeader(proto::ByteSpan(out.data(), proto::kHeaderSize));
  if (!reply.ok() || reply->request_id != 77 || reply->body_len != out.size() - proto::kHeaderSize) std::abort();
  // Regions the fuzzer allocated are dropped again so capacity never runs out.
  for (uint64_t r = 2; r < 4; ++r) store->FreeRegion(r);
  return 0;
}
