#include <algorithm>

#include "common/crc.h"
#include "memnode/handlers.h"
#include "memnode/write_rules.h"
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
  uint64_t newest = 0;
  for (const proto::c2m::WritePage& p : m->pages) {
    newest = std::max(newest, p.version);
    Result<SlotView> slot = store.Lookup(m->region, p.ref.fragment, p.ref.slot);
    if (!slot.ok()) return proto::AppendErrorReply(req, slot.status(), out);
    if (p.data.empty()) {
      if (p.crc != Crc32cOfZeros(slot->size)) {
        return proto::AppendErrorReply(req, Corruption("a write of zeros arrived with a checksum of other data"), out);
      }
      slots.push_back(*slot);
      continue;
    }
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
  // One clock reading for the batch: its newest version decides.
  Status in_time = store.version_limit().Admit(newest);
  if (!in_time.ok()) return proto::AppendErrorReply(req, in_time, out);
  // The watermark first: it completes this writer's earlier writes, which may
  // be the ones this request overwrites.
  store.undo().Commit(m->region, m->writer, m->done_below);
  proto::c2m::WritePagesReply reply;
  using Reason = proto::c2m::Unapplied::Reason;
  for (size_t i = 0; i < slots.size(); ++i) {
    const proto::c2m::WritePage& p = m->pages[i];
    const WriteOutcome w = ApplyWrite(store.undo(), m->region, m->writer, m->mode, p, slots[i]);
    if (w == WriteOutcome::kApplied) {
      if (p.data.empty()) store.ReleaseZeros(m->region, p.ref.fragment, p.ref.slot);
      continue;
    }
    // Never silent: the writer learns what the slot holds instead (c2m.h).
    reply.unapplied.push_back({static_cast<uint32_t>(i),
                               w == WriteOutcome::kConflict ? Reason::kConflict : Reason::kSuperseded,
                               *slots[i].version});
  }
  proto::AppendReply(req, reply, out);
}

}  // namespace tessera::memnode
