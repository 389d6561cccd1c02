// What one page share of a c2m::WritePages does to a slot and its undo entry,
// per write mode (proto/c2m.h has the protocol side of the write hole):
//
//   kWrite    lands only if newer than the slot; keeps the replaced contents
//             in the UndoLog; refused (kConflict) if the slot's newest version
//             is another writer's unfinished write, which must be resolved
//             first. A writer's own earlier write is complete by the time it
//             writes the page again (clients never overlap writes of a page),
//             so its contents become the new undo copy.
//   kCommit   lands if newer and is complete at once (the rebuild's writes).
//   kResolve  makes the slot hold the version the resolver found k shares
//             holding: forward if it is at least as new (completing the
//             unfinished write), back only over the resolver's own write or an
//             orphaned one; otherwise kConflict, try again later.
//
// Thread-safety: as FragmentStore (the server thread only).
#pragma once

#include <cstdint>

#include "memnode/fragment_store.h"
#include "proto/c2m.h"

namespace tessera::memnode {

enum class WriteOutcome : uint8_t { kApplied, kSuperseded, kConflict };

WriteOutcome ApplyWrite(UndoLog& undo, uint64_t region, uint64_t writer, proto::c2m::WriteMode mode,
                        const proto::c2m::WritePage& page, const SlotView& slot);

}  // namespace tessera::memnode
