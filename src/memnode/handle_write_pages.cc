#include <cstring>

#include "common/crc.h"
#include "memnode/handlers.h"
#include "proto/c2m.h"

namespace tessera::memnode {

void HandleWritePages(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                      proto::Bytes* out) {
  Result<proto::c2m::WritePages> m = proto::c2m::WritePages::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  Status admitted = store.AdmitEpoch(m->region, m->epoch);
  if (!admitted.ok()) return proto::AppendErrorReply(req, admitted, out);
  std::vector<SlotView> slots;
  slots.reserve(m->pages.size());
  // Validate the whole batch first so that a bad page writes nothing.
  for (const proto::c2m::WritePage& p : m->pages) {
    Result<SlotView> slot = store.Lookup(m->region, p.ref.fragment, p.ref.slot);
    if (!slot.ok()) return proto::AppendErrorReply(req, slot.status(), out);
    if (p.data.size() != slot->size) {
      return proto::AppendErrorReply(req,
                                     InvalidArgument("page of " + std::to_string(p.data.size()) +
                                                     " bytes for a slot of " + std::to_string(slot->size)),
                                     out);
    }
    if (Crc32c(p.data.data(), p.data.size()) != p.crc) {
      return proto::AppendErrorReply(
          req, Corruption("page for fragment " + std::to_string(p.ref.fragment) + " slot " +
                          std::to_string(p.ref.slot) + " arrived with a bad checksum"),
          out);
    }
    slots.push_back(*slot);
  }
  // Only a newer version lands: of two racing writers, the later version wins
  // here and on every other node of the stripe, whatever the arrival order;
  // a rebuild never overwrites a write that overtook it.
  for (size_t i = 0; i < slots.size(); ++i) {
    const proto::c2m::WritePage& p = m->pages[i];
    if (p.version <= *slots[i].version) continue;
    std::memcpy(slots[i].data, p.data.data(), slots[i].size);
    *slots[i].crc = p.crc;
    *slots[i].version = p.version;
  }
  proto::AppendReply(req, proto::Empty{}, out);
}

}  // namespace tessera::memnode
