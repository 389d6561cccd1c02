#include "memnode/write_rules.h"

#include <cstring>

namespace tessera::memnode {
namespace {

using proto::c2m::WriteMode;

void Install(const proto::c2m::WritePage& page, const SlotView& slot) {
  *slot.zeros = page.data.empty();  // a write of zeros sends none
  if (*slot.zeros) {
    std::memset(slot.data, 0, slot.size);
  } else {
    std::memcpy(slot.data, page.data.data(), slot.size);
  }
  *slot.crc = page.crc;
  *slot.version = page.version;
}

}  // namespace

WriteOutcome ApplyWrite(UndoLog& undo, uint64_t region, uint64_t writer, WriteMode mode,
                        const proto::c2m::WritePage& page, const SlotView& slot) {
  const uint32_t fragment = page.ref.fragment, index = page.ref.slot;
  UndoEntry* entry = undo.Find(region, fragment, index);
  const bool newer = page.version > *slot.version;
  switch (mode) {
    case WriteMode::kWrite:
      if (!newer) return WriteOutcome::kSuperseded;
      if (entry != nullptr && entry->writer != writer) return WriteOutcome::kConflict;
      // A slot never written (version 0) or written as zeros holds zeros: the
      // log need not copy them.
      undo.Record(region, fragment, index, writer, page.version, *slot.version, *slot.crc,
                  *slot.zeros || *slot.version == 0 ? nullptr : slot.data, slot.size);
      Install(page, slot);
      return WriteOutcome::kApplied;
    case WriteMode::kCommit:
      if (!newer) return WriteOutcome::kSuperseded;
      if (entry != nullptr) undo.Erase(region, fragment, index);
      Install(page, slot);
      return WriteOutcome::kApplied;
    case WriteMode::kResolve:
      if (entry == nullptr) {
        if (!newer) return WriteOutcome::kSuperseded;
        Install(page, slot);
        return WriteOutcome::kApplied;
      }
      if (page.version < *slot.version && entry->writer != writer && !undo.Orphaned(*entry)) {
        return WriteOutcome::kConflict;  // its writer may still finish it
      }
      if (page.version != *slot.version) Install(page, slot);
      undo.Erase(region, fragment, index);
      return WriteOutcome::kApplied;
  }
  return WriteOutcome::kConflict;
}

}  // namespace tessera::memnode
