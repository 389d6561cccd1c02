#include "controller/repair.h"

#include <algorithm>
#include <set>

#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"
#include "proto/ctl2m.h"

namespace tessera::controller {
namespace {

using FragmentState = RegionRecord::FragmentState;

constexpr uint64_t kRetryAfterFailureNs = 1'000'000'000;

// Ready fragments of stripe `s` on live nodes.
int ReadableInStripe(Context& ctx, const RegionRecord& r, uint64_t s, uint64_t now) {
  int n = 0;
  for (int j = 0; j < r.width(); ++j) {
    uint64_t f = s * r.width() + j;
    n += r.fragment_states[f] == FragmentState::kReady && ctx.NodeAlive(r.fragment_nodes[f], now);
  }
  return n;
}

// A live node for fragment f: not in its stripe, a fresh domain if possible,
// then the most free space. 0 if none has room.
uint64_t ChooseReplacement(Context& ctx, const RegionRecord& r, uint32_t f, std::map<uint64_t, uint64_t>* planned) {
  uint64_t stripe = f / r.width();
  std::set<uint64_t> in_stripe;
  std::set<std::string> domains;
  for (int j = 0; j < r.width(); ++j) {
    uint64_t node = r.fragment_nodes[stripe * r.width() + j];
    if (r.fragment_states[stripe * r.width() + j] == FragmentState::kLost) continue;
    in_stripe.insert(node);
    auto it = ctx.state.nodes().find(node);
    if (it != ctx.state.nodes().end()) domains.insert(FailureDomain(node, it->second.domain));
  }
  uint64_t best = 0, best_free = 0;
  bool best_fresh = false;
  for (const NodeSlot& n : ctx.LiveNodeSpace()) {
    if (in_stripe.count(n.id)) continue;  // LiveNodeSpace holds no dead node
    uint64_t used = (*planned)[n.id];
    uint64_t free = n.free_bytes > used ? n.free_bytes - used : 0;
    if (free < r.FragmentBytes(f)) continue;
    bool fresh = !domains.count(FailureDomain(n.id, n.domain));
    if (best == 0 || (fresh && !best_fresh) || (fresh == best_fresh && free > best_free)) {
      best = n.id;
      best_free = free;
      best_fresh = fresh;
    }
  }
  if (best != 0) (*planned)[best] += r.FragmentBytes(f);
  return best;
}

// Gives each lost fragment of `r` that can be rebuilt a new home; returns
// how many it placed, and in `*placed` which fragments went to which node.
// The nodes allocate them at the map's current epoch: until the new map is
// recorded, nothing about them is visible to anyone.
int PlaceLost(Context& ctx, RegionRecord& r, uint64_t now, std::map<uint64_t, std::vector<uint32_t>>* placed_on) {
  std::map<uint64_t, uint64_t> planned;
  std::map<uint64_t, proto::ctl2m::AllocFragments> per_node;
  std::map<uint64_t, std::vector<uint32_t>> frags_of;
  for (uint32_t f = 0; f < r.fragment_count(); ++f) {
    if (r.fragment_states[f] != FragmentState::kLost) continue;
    auto dead = ctx.declared_dead.find(r.fragment_nodes[f]);
    if (dead != ctx.declared_dead.end() &&
        now - dead->second < static_cast<uint64_t>(ctx.options.rebuild_delay_ms) * 1'000'000) {
      continue;  // its node may yet come back
    }
    if (ReadableInStripe(ctx, r, f / r.width(), now) < r.redundancy.k) continue;  // nothing to rebuild from
    uint64_t target = ChooseReplacement(ctx, r, f, &planned);
    if (target == 0) continue;
    auto& req = per_node[target];
    req.region = r.id;
    req.epoch = r.epoch;
    req.fragments.push_back({f, r.StripePages(f / r.width()), r.slot_size()});
    frags_of[target].push_back(f);
  }
  int placed = 0;
  for (auto& [node, req] : per_node) {
    if (Status s = ctx.CallNode(node, req, ctx.options.memnode_timeout_ms); !s.ok()) {
      log::Warn("region '{}': could not place {} replacement fragment(s) on memory node {}: {}", r.name,
                req.fragments.size(), node, s.ToString());
      continue;
    }
    for (uint32_t f : frags_of[node]) {
      r.fragment_nodes[f] = node;
      r.fragment_states[f] = FragmentState::kRebuilding;
      ++placed;
    }
    (*placed_on)[node] = std::move(frags_of[node]);
  }
  return placed;
}

// The new map of a rebuild could not be recorded: its fragments would lie on
// their nodes unknown to any map, and block the next placement there.
void Unplace(Context& ctx, const RegionRecord& r, const std::map<uint64_t, std::vector<uint32_t>>& placed_on) {
  for (const auto& [node, fragments] : placed_on) {
    Status s = ctx.CallNode(node, proto::ctl2m::FreeFragments{r.id, fragments}, ctx.options.memnode_timeout_ms);
    if (!s.ok()) {
      log::Warn("region '{}': memory node {} keeps {} unrecorded replacement fragment(s): {}", r.name, node,
                fragments.size(), s.ToString());
    }
  }
}

RebuildPlan PlanFor(Context& ctx, const RegionRecord& r, uint64_t now) {
  RebuildPlan plan{.region = r.id, .epoch = r.epoch, .redundancy = r.redundancy, .slot_size = r.slot_size(),
                   .rate_limit_bytes_per_s = ctx.options.rebuild_rate_limit,
                   .timeout_ms = ctx.options.memnode_timeout_ms};
  for (uint32_t f = 0; f < r.fragment_count(); ++f) {
    if (r.fragment_states[f] != FragmentState::kRebuilding) continue;
    uint64_t stripe = f / r.width();
    RebuildTask t{.fragment = f, .share = static_cast<int>(f % r.width()), .slots = r.StripePages(stripe),
                  .target = ctx.state.nodes()[r.fragment_nodes[f]].addr};
    for (int j = 0; j < r.width(); ++j) {
      uint32_t g = static_cast<uint32_t>(stripe * r.width() + j);
      bool ok = r.fragment_states[g] == FragmentState::kReady && ctx.NodeAlive(r.fragment_nodes[g], now);
      t.sources.push_back(ok ? ctx.state.nodes()[r.fragment_nodes[g]].addr : "");
      t.source_fragments.push_back(g);
    }
    plan.tasks.push_back(std::move(t));
  }
  return plan;
}

}  // namespace

Status PublishEpoch(Context& ctx, RegionRecord& r) {
  ++r.epoch;
  TS_RETURN_IF_ERROR(ctx.state.PutRegion(r));
  uint64_t now = NowNanos();
  std::set<uint64_t> holders(r.fragment_nodes.begin(), r.fragment_nodes.end());
  for (uint64_t node : holders) {
    if (!ctx.NodeAlive(node, now)) continue;
    Status s = ctx.CallNode(node, proto::ctl2m::SetEpoch{r.id, r.epoch}, 1000);
    if (!s.ok()) log::Warn("region '{}': memory node {} did not take epoch {}: {}", r.name, node, r.epoch, s.ToString());
  }
  return Status::Ok();
}

void CreditDeafTime(Context& ctx) {
  // While this thread was busy (a large region's map published, a slow disk)
  // it heard no heartbeats; they wait in the sockets. Silence it caused is no
  // evidence against anyone: push every deadline back by the deaf time.
  const uint64_t now = NowNanos();
  const uint64_t tick_ns = uint64_t{ctx.options.tick_ms} * 1'000'000;
  if (ctx.last_failure_check_ns != 0 && now - ctx.last_failure_check_ns > 2 * tick_ns) {
    const uint64_t deaf = now - ctx.last_failure_check_ns - tick_ns;
    for (auto& [id, n] : ctx.state.nodes()) n.last_heartbeat_ns = std::min(now, n.last_heartbeat_ns + deaf);
  }
  ctx.last_failure_check_ns = now;
}

namespace {

// Marks every fragment of node `id` lost in every region map (a new epoch
// each, told to the live nodes). False if a map could not be recorded: the
// caller tries again (the store may take no writes for a while).
bool MarkLost(Context& ctx, uint64_t id) {
  std::vector<RegionRecord> changed;
  for (const auto& [name, r] : ctx.state.regions()) {
    RegionRecord copy = r;
    int lost = 0;
    for (uint32_t f = 0; f < copy.fragment_count(); ++f) {
      if (copy.fragment_nodes[f] == id && copy.fragment_states[f] != FragmentState::kLost) {
        copy.fragment_states[f] = FragmentState::kLost;
        ++lost;
      }
    }
    if (lost > 0) {
      log::Warn("region '{}' lost {} fragment(s) on memory node {}", name, lost, id);
      changed.push_back(std::move(copy));
    }
  }
  bool recorded = true;
  for (RegionRecord& r : changed) {
    Status s = PublishEpoch(ctx, r);
    if (s.ok()) continue;
    recorded = false;
    // A store that takes no writes says so itself (StoreHealth), once a minute.
    if (!ctx.state.store_failing()) log::Error("region '{}': could not record lost fragments: {}", r.name, s.ToString());
  }
  return recorded;
}

}  // namespace

void DeclareDead(Context& ctx, uint64_t id, const std::string& why) {
  if (!ctx.declared_dead.emplace(id, NowNanos()).second) return;
  auto it = ctx.state.nodes().find(id);
  log::Warn("memory node {} at {} declared dead: {}", id, it == ctx.state.nodes().end() ? "?" : it->second.addr, why);
  if (!MarkLost(ctx, id)) ctx.losses_unrecorded = true;
}

void DetectFailures(Context& ctx) {
  CreditDeafTime(ctx);
  uint64_t now = NowNanos();
  std::vector<std::pair<uint64_t, std::string>> dead;
  for (auto& [id, n] : ctx.state.nodes()) {
    if (ctx.Alive(n, now) || ctx.declared_dead.count(id)) continue;
    // With etcd, a node that has just registered is given a membership term
    // to put its key.
    if (ctx.members && now - n.registered_ns < static_cast<uint64_t>(ctx.options.member_ttl_s) * 1'000'000'000) {
      continue;
    }
    dead.emplace_back(id, ctx.members ? "its membership lease is gone"
                                      : "no heartbeat for " + std::to_string((now - n.last_heartbeat_ns) / 1'000'000) +
                                            " ms");
  }
  for (const auto& [id, why] : dead) DeclareDead(ctx, id, why);
  // Losses a map could not record yet (the store took no writes): again,
  // once it takes them.
  if (ctx.losses_unrecorded && !ctx.state.store_failing()) {
    ctx.losses_unrecorded = false;
    for (const auto& [id, since] : ctx.declared_dead) {
      if (!MarkLost(ctx, id)) ctx.losses_unrecorded = true;
    }
  }
}

void ScheduleRebuild(Context& ctx) {
  CreditDeafTime(ctx);  // DetectFailures, just before, may have taken long
  uint64_t now = NowNanos();
  if (ctx.rebuild || now - ctx.last_rebuild_failure_ns < kRetryAfterFailureNs) return;
  for (const auto& [name, rec] : ctx.state.regions()) {
    if (rec.state != RegionState::kReady) continue;
    RegionRecord r = rec;
    std::map<uint64_t, std::vector<uint32_t>> placed_on;
    int placed = PlaceLost(ctx, r, now, &placed_on);
    bool pending = placed > 0;
    for (auto st : r.fragment_states) pending |= st == FragmentState::kRebuilding;
    if (!pending) continue;
    if (placed > 0) {
      Status s = PublishEpoch(ctx, r);
      if (!s.ok()) {
        // (A store that takes no writes says so itself, once a minute.)
        if (!ctx.state.store_failing()) {
          log::Error("region '{}': could not record its replacement fragments: {}", name, s.ToString());
        }
        if (s.code() != Code::kNotLeader) Unplace(ctx, r, placed_on);
        ctx.last_rebuild_failure_ns = now;
        return;
      }
    }
    auto job = RebuildJob::Start(PlanFor(ctx, r, now));
    if (!job.ok()) {
      log::Error("region '{}': rebuild did not start: {}", name, job.status().ToString());
      ctx.last_rebuild_failure_ns = now;
      return;
    }
    log::Info("region '{}': rebuilding {} fragment(s), {}", name, (*job)->plan().tasks.size(),
              FormatSize((*job)->total_bytes()));
    ctx.rebuild = std::move(*job);
    ctx.rebuild_region = name;
    return;
  }
}

void FinishRebuild(Context& ctx) {
  if (!ctx.rebuild || !ctx.rebuild->done()) return;
  std::unique_ptr<RebuildJob> job = std::move(ctx.rebuild);
  auto it = ctx.state.regions().find(ctx.rebuild_region);
  if (it == ctx.state.regions().end() || it->second.id != job->plan().region) return;  // deleted meanwhile
  RegionRecord r = it->second;
  int ready = 0;
  for (size_t i = 0; i < job->plan().tasks.size(); ++i) {
    const RebuildTask& t = job->plan().tasks[i];
    if (!job->finished(i) || r.fragment_states[t.fragment] != FragmentState::kRebuilding) continue;
    if (ctx.state.nodes()[r.fragment_nodes[t.fragment]].addr != t.target) continue;
    r.fragment_states[t.fragment] = FragmentState::kReady;
    ++ready;
  }
  if (!job->status().ok()) {
    ctx.last_rebuild_failure_ns = NowNanos();
    log::Warn("region '{}': rebuild stopped after {} of {} fragment(s): {}", r.name, ready,
              job->plan().tasks.size(), job->status().ToString());
  } else {
    log::Info("region '{}': rebuilt {} fragment(s), {} at {}/s{}", r.name, ready, FormatSize(job->total_bytes()),
              FormatSize(job->bytes_per_second()),
              job->unresolved_slots() ? "; " + std::to_string(job->unresolved_slots()) +
                                            " slot(s) had no agreeing version and were left" : "");
  }
  if (ready > 0) {
    Status s = PublishEpoch(ctx, r);
    if (!s.ok()) log::Error("region '{}': could not record rebuilt fragments: {}", r.name, s.ToString());
  }
}

void Rejoin(Context& ctx, uint64_t node_id) {
  if (!ctx.declared_dead.erase(node_id)) return;
  int freed = 0;
  for (const auto& [name, r] : ctx.state.regions()) {
    bool held = false;
    for (uint32_t f = 0; f < r.fragment_count(); ++f) held |= r.fragment_nodes[f] == node_id;
    if (!held) continue;
    // Everything it holds of this region was marked lost when it was declared dead.
    Status s = ctx.CallNode(node_id, proto::ctl2m::FreeRegion{r.id}, 1000);
    if (s.ok()) {
      ++freed;
    } else {
      log::Warn("memory node {} is back but did not drop region '{}': {}", node_id, name, s.ToString());
    }
  }
  log::Info("memory node {} is back after being declared dead; dropped its stale fragments of {} region(s)",
            node_id, freed);
}

}  // namespace tessera::controller
