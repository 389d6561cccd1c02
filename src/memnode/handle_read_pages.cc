#include "common/crc.h"
#include "memnode/handlers.h"
#include "proto/c2m.h"

namespace tessera::memnode {

void HandleReadPages(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                     proto::Bytes* out) {
  Result<proto::c2m::ReadPages> m = proto::c2m::ReadPages::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  Status admitted = store.AdmitEpoch(m->region, m->epoch);
  if (!admitted.ok()) return proto::AppendErrorReply(req, admitted, out);
  proto::c2m::ReadPagesReply reply;
  reply.flags = m->flags;
  reply.pages.reserve(m->pages.size());
  for (const proto::c2m::PageRef& p : m->pages) {
    Result<SlotView> slot = store.Lookup(m->region, p.fragment, p.slot);
    if (!slot.ok()) return proto::AppendErrorReply(req, slot.status(), out);
    const uint8_t* data = *slot->zeros ? store.zeros() : slot->data;
    // Verify before sending: a node must never hand out a page it cannot vouch for.
    if (Crc32c(data, slot->size) != *slot->crc) {
      return proto::AppendErrorReply(
          req,
          Corruption("stored page failed its checksum: region " + std::to_string(m->region) + " fragment " +
                     std::to_string(p.fragment) + " slot " + std::to_string(p.slot)),
          out);
    }
    reply.pages.push_back({*slot->version, *slot->crc, proto::ByteSpan(data, slot->size)});
    if (m->flags & proto::c2m::kWithPrevious) {
      const UndoEntry* e = store.undo().Find(m->region, p.fragment, p.slot);
      if (e == nullptr) {
        reply.previous.push_back({});
      } else {
        const bool zeros = e->prev.empty();
        const uint8_t* prev = zeros ? store.zeros() : e->prev.data();
        const size_t bytes = zeros ? slot->size : e->prev.size();
        reply.previous.push_back({e->prev_version, e->prev_crc, proto::ByteSpan(prev, bytes)});
      }
    }
  }
  proto::AppendReply(req, reply, out);
}

}  // namespace tessera::memnode
