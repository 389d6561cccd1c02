// c2ctl::WatchMaps: clients follow their regions' maps by long poll. A watch
// names regions with the epoch of the map the client holds; one that finds
// nothing newer waits in ctx.watches for a region write (the region
// generation moves) or for its hold to run out, and is answered through the
// server's deferred replies. The client's epochs are the whole state, so a
// watch sent to a new leader after a fail-over resumes where it left off.
#include <unordered_map>

#include "common/clock.h"
#include "controller/handlers.h"

namespace tessera::controller {
namespace {

// A controller keeps at most this many waiting watches; past it a client is
// told to come back (it does, after a pause).
constexpr size_t kMaxWatches = 16384;

using RegionsById = std::unordered_map<uint64_t, const RegionRecord*>;

RegionsById IndexRegions(Context& ctx) {
  RegionsById by_id;
  for (const auto& [name, r] : ctx.state.regions()) by_id.emplace(r.id, &r);
  return by_id;
}

proto::c2ctl::MapChanges ChangesFor(Context& ctx, const RegionsById& by_id,
                                    const std::vector<proto::c2ctl::WatchedRegion>& watched) {
  proto::c2ctl::MapChanges changes;
  for (const proto::c2ctl::WatchedRegion& w : watched) {
    auto it = by_id.find(w.id);
    if (it == by_id.end() || it->second->state == RegionState::kDeleting) {
      changes.gone.push_back(w.id);
    } else if (it->second->state == RegionState::kReady && it->second->epoch > w.epoch) {
      changes.maps.push_back(RegionInfoOf(ctx, *it->second));
    }
  }
  return changes;
}

bool Empty(const proto::c2ctl::MapChanges& c) { return c.maps.empty() && c.gone.empty(); }

}  // namespace

void HandleWatchMaps(Context& ctx, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) {
  auto m = proto::c2ctl::WatchMaps::Decode(body);
  if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
  proto::c2ctl::MapChanges changes = ChangesFor(ctx, IndexRegions(ctx), m->regions);
  if (!Empty(changes) || m->hold_ms == 0) return proto::AppendReply(req, changes, out);
  if (ctx.watches.size() >= kMaxWatches) {
    return proto::AppendErrorReply(
        req, Unavailable("the controller already holds " + std::to_string(kMaxWatches) + " map watches"), out);
  }
  ctx.watches.push_back({ctx.server->Defer(req), std::move(m->regions),
                         NowNanos() + uint64_t{m->hold_ms} * 1'000'000});
}

void AnswerWatches(Context& ctx) {
  if (ctx.watches.empty()) return;
  const bool changed = ctx.state.region_generation() != ctx.watches_checked_generation;
  ctx.watches_checked_generation = ctx.state.region_generation();
  const uint64_t now = NowNanos();
  const RegionsById by_id = changed ? IndexRegions(ctx) : RegionsById{};
  std::vector<MapWatch> waiting;
  for (MapWatch& w : ctx.watches) {
    proto::c2ctl::MapChanges changes;
    if (changed) changes = ChangesFor(ctx, by_id, w.regions);
    if (Empty(changes) && now < w.until_ns) {
      waiting.push_back(std::move(w));
      continue;
    }
    proto::Bytes frame;
    proto::AppendReply(w.reply.req, changes, &frame);
    ctx.server->SendDeferred(w.reply, frame);  // false: the client went away
  }
  ctx.watches.swap(waiting);
}

}  // namespace tessera::controller
