// Repair: what the controller does, every tick, so that regions get back to
// full redundancy without anyone asking — LegoOS's GMM keeping memory
// available when a memory component fails.
//
//  - DetectFailures: a node silent for Options::node_timeout_ms is declared
//    dead; its fragments become "lost" in every region map (a new epoch, told
//    to the region's live nodes so clients holding the old map are sent for
//    the new one). Time the controller's own thread spent busy elsewhere does
//    not count as silence. A map the store could not record then (it took no
//    writes) is recorded on a later tick, once it takes them.
//  - ScheduleRebuild: for one region at a time, picks a replacement node for
//    each lost fragment whose stripe still has k readable fragments (a live
//    node not already in the stripe, a fresh failure domain if there is one,
//    the most free space), allocates it there, marks it "rebuilding" (clients
//    write it, do not read it) and starts a RebuildJob.
//  - FinishRebuild: when the job ends, fragments it completed become ready.
//  - Rejoin: a node declared dead that heartbeats again (it was cut off, not
//    restarted) still holds fragments that missed writes; they are freed on
//    it before anything else, so it never serves stale data, and it takes
//    part as an empty node again.
//
// Thread-safety: the controller's server thread only (Context).
#pragma once

#include <string>

#include "controller/context.h"

namespace tessera::controller {

void DetectFailures(Context& ctx);
// Declares node `id` dead now, for `why` (the log says it): its fragments
// become lost in every map. A no-op for a node already declared dead.
void DeclareDead(Context& ctx, uint64_t id, const std::string& why);
// Pushes every node's heartbeat deadline back by the time since the last
// call beyond a tick: time this thread spent busy, deaf to heartbeats.
// DetectFailures and ScheduleRebuild call it first.
void CreditDeafTime(Context& ctx);
void ScheduleRebuild(Context& ctx);
void FinishRebuild(Context& ctx);
void Rejoin(Context& ctx, uint64_t node_id);

// Bumps r's epoch, persists r and tells r's live nodes.
Status PublishEpoch(Context& ctx, RegionRecord& r);

}  // namespace tessera::controller
