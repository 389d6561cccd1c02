// The controller's request handlers, one file per concern
// (handle_membership.cc, handle_create_region.cc, handle_delete_region.cc,
// handle_queries.cc, handle_watch_maps.cc). Each decodes its request, acts on
// the Context and appends exactly one reply frame — but WatchMaps, which may
// answer later.
//
// Thread-safety: called only on the controller's server thread.
#pragma once

#include "controller/context.h"
#include "proto/c2ctl.h"
#include "proto/frame.h"

namespace tessera::controller {

using HandlerFn = void (*)(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);

void HandleRegister(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleHeartbeat(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleCreateRegion(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleCloneRegion(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleDeleteRegion(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleRenewLeases(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);

// Deletes the regions whose lease ran out (runs on every tick).
void ExpireLeases(Context& ctx);
void HandleOpenRegion(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleListRegions(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
void HandleClusterStatus(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
// Answers at once if a map the client names is newer, or keeps the request
// in ctx.watches (the one handler that may append no reply).
void HandleWatchMaps(Context&, const proto::FrameHeader&, proto::ByteSpan, proto::Bytes*);
// Answers the kept watches whose maps changed or whose hold ran out (after
// every request and tick: cheap unless a region was written).
void AnswerWatches(Context& ctx);

// The region map a client needs: nodes with their addresses, and for each
// fragment the index of its node and its state.
proto::c2ctl::RegionInfo RegionInfoOf(Context& ctx, const RegionRecord& r);
// A fragment's state in maps and in `status`: as recorded, and lost once its
// node is declared dead (before the map records it, if the store takes no
// writes). Never lost for a node that merely missed heartbeats — they may wait
// unread while this thread was busy — since a client leaves the shares a map
// calls lost out of its writes: a live node shown lost would miss them for
// good. DetectFailures declares a silent node dead within a tick anyway.
proto::c2ctl::FragmentState FragmentOf(Context& ctx, const RegionRecord& r, uint64_t f);

// Frees every fragment of `r` on its nodes. Used by delete and by recovery of
// regions a crash left half-created.
Status FreeRegionOnNodes(Context& ctx, const RegionRecord& r);

}  // namespace tessera::controller
