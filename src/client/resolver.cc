#include "client/resolver.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

#include "common/clock.h"
#include "common/crc.h"
#include "ec/version_vote.h"
#include "proto/c2m.h"

namespace tessera::client {
namespace {

constexpr uint64_t kAbsent = ~0ull;  // a share with no previous version
constexpr int kPauseMs = 20;

using Reply = std::function<void(size_t, const Status&, const proto::FrameHeader&, proto::ByteSpan)>;

// Sends requests[i].second to requests[i].first, all at once, and waits for
// every reply; on_reply(i, ...) runs once per request, under one lock. A node
// that does not answer in time has its connection aborted, which fails the
// request, so no callback outlives the call.
template <typename Req>
void Exchange(NodePool& pool, const std::vector<std::pair<std::string, Req>>& requests, int timeout_ms,
              const Reply& on_reply) {
  struct Shared {
    std::mutex mu;
    std::atomic<size_t> left{0};
  };
  auto shared = std::make_shared<Shared>();
  shared->left = requests.size();
  std::vector<std::shared_ptr<net::Connection>> used;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto finish = [shared, &on_reply, i](const Status& s, const proto::FrameHeader& h, proto::ByteSpan b) {
      {
        std::lock_guard lk(shared->mu);
        on_reply(i, s, h, b);
      }
      shared->left.fetch_sub(1, std::memory_order_release);
    };
    auto conn = pool.Get(requests[i].first);
    if (!conn.ok()) {
      finish(conn.status(), {}, {});
      continue;
    }
    used.push_back(*conn);
    proto::Bytes body;
    proto::Writer w(&body);
    requests[i].second.Encode(w);
    Status sent = (*conn)->Send(Req::kOp, body, finish);
    if (!sent.ok()) finish(sent, {}, {});
  }
  uint64_t deadline = NowNanos() + uint64_t(timeout_ms) * 1'000'000;
  auto all_in = [&] { return shared->left.load(std::memory_order_acquire) == 0; };
  if (!pool.transport().WaitUntil(all_in, deadline).ok()) {
    for (auto& c : used) c->Abort(TimedOut("no reply while settling a page"));
  }
}

}  // namespace

struct Resolver::PageState {
  uint64_t page = 0;
  bool settled = false;
  Status status;
  // This attempt's reads: share j's current and previous version.
  uint32_t have = 0;
  uint64_t cur_v[proto::Redundancy::kMaxWidth] = {};
  uint64_t prev_v[proto::Redundancy::kMaxWidth] = {};
  std::vector<uint8_t> cur, prev;
  // The version to settle on, and its shares.
  uint64_t version = 0;
  std::vector<uint8_t> bytes, scratch;
  const uint8_t* share[proto::Redundancy::kMaxWidth] = {};
  bool conflict = false;
};

std::vector<Status> Resolver::Resolve(const RegionMap& map, std::span<const uint64_t> pages) {
  std::vector<PageState> states(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) states[i].page = pages[i];
  uint64_t deadline = NowNanos() + uint64_t(budget_ms_) * 1'000'000;
  while (Attempt(map, states) && NowNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kPauseMs));
  }
  std::vector<Status> out;
  for (PageState& p : states) {
    out.push_back(p.settled ? p.status
                            : Unavailable("page " + std::to_string(p.page) + ": another writer's unfinished write " +
                                          "neither completed nor was abandoned within " +
                                          std::to_string(budget_ms_) + " ms"));
  }
  return out;
}

bool Resolver::Attempt(const RegionMap& map, std::vector<PageState>& pages) {
  const PageCodec& codec = map.codec();
  const size_t slot = codec.slot_size();
  for (PageState& p : pages) {
    if (p.settled) continue;
    p.have = 0;
    p.conflict = false;
    p.cur.resize(codec.width() * slot);
    p.prev.resize(codec.width() * slot);
  }
  ReadShares(map, pages);
  for (PageState& p : pages) {
    if (p.settled) continue;
    std::vector<ec::VersionOffer> offers;
    for (uint32_t m = p.have; m != 0; m &= m - 1) {
      int j = std::countr_zero(m);
      offers.push_back({j, p.cur_v[j]});
      if (p.prev_v[j] != kAbsent) offers.push_back({j, p.prev_v[j]});
    }
    std::optional<ec::Vote> vote = ec::NewestWithQuorum(offers, codec.k());
    if (!vote) {
      std::string where = "page " + std::to_string(p.page) + ": ";
      p.status = std::popcount(p.have) < codec.k()
                     ? Unavailable(where + std::to_string(std::popcount(p.have)) + " fragments answered, " +
                                   std::to_string(codec.k()) + " needed to settle an interrupted write")
                     : DataLoss(where + "no " + std::to_string(codec.k()) + " fragments hold one version");
      p.settled = true;
      continue;
    }
    // Gather the voted version's shares where Join expects them, then cut
    // the page into every share again (parity included).
    for (uint32_t m = vote->shares; m != 0; m &= m - 1) {
      int j = std::countr_zero(m);
      if (p.cur_v[j] != vote->version) std::memcpy(&p.cur[j * slot], &p.prev[j * slot], slot);
    }
    p.version = vote->version;
    p.bytes.resize(codec.page_size());
    p.scratch.resize(codec.scratch_bytes());
    Status joined = codec.Join(p.cur.data(), vote->shares, p.bytes.data());
    if (!joined.ok()) {
      p.status = joined;
      p.settled = true;
      continue;
    }
    codec.Split(p.bytes.data(), p.scratch.data(), p.share);
  }
  WriteShares(map, pages);
  bool left = false;
  for (PageState& p : pages) {
    if (p.settled) continue;
    if (p.conflict) {
      left = true;
    } else {
      p.settled = true;
      p.status = Status::Ok();
    }
  }
  return left;
}

namespace {

// Groups the shares to send by node: request r goes to requests[r].first and
// carries targets[r], in order.
template <typename Req, typename Target>
struct Plan {
  std::vector<std::pair<std::string, Req>> requests;
  std::vector<std::vector<Target>> targets;
  std::map<std::string, size_t> index;
  Req& For(const std::string& address, const Req& blank, Target t) {
    auto [it, added] = index.emplace(address, requests.size());
    if (added) {
      requests.push_back({address, blank});
      targets.emplace_back();
    }
    targets[it->second].push_back(t);
    return requests[it->second].second;
  }
};

bool ShareOk(const proto::c2m::PageData& d, size_t slot) {
  return d.data.size() == slot && Crc32c(d.data.data(), slot) == d.crc;
}

}  // namespace

// A request that failed: a stale map settles its pages (the queue refreshes
// the map and tries the write again); a node that failed is marked down and
// its shares simply do not count.
void Resolver::OnFailure(const Status& s, const std::string& address, const std::vector<Target>& targets,
                         std::vector<PageState>& pages) {
  if (s.code() == Code::kStaleMap) {
    for (const Target& t : targets) {
      pages[t.page].settled = true;
      pages[t.page].status = s;
    }
  } else if (s.code() == Code::kUnavailable || s.code() == Code::kTimedOut) {
    pool_->MarkDown(address);
  }
}

void Resolver::ReadShares(const RegionMap& map, std::vector<PageState>& pages) {
  const size_t slot = map.codec().slot_size();
  Plan<proto::c2m::ReadPages, Target> plan;
  const proto::c2m::ReadPages blank{.region = map.info().id, .epoch = map.epoch(), .flags = proto::c2m::kWithPrevious};
  for (size_t i = 0; i < pages.size(); ++i) {
    if (pages[i].settled) continue;
    for (int j = 0; j < map.width(); ++j) {
      uint32_t f = map.FragmentOf(pages[i].page, j);
      const std::string& address = map.AddressOf(f);
      if (map.StateOf(f) != RegionMap::FragmentState::kReady || pool_->IsDown(address)) continue;
      plan.For(address, blank, {i, j}).pages.push_back({f, map.SlotOf(pages[i].page)});
    }
  }
  Exchange(*pool_, plan.requests, timeout_ms_,
           [&](size_t r, const Status& s, const proto::FrameHeader& h, proto::ByteSpan b) {
             const std::vector<Target>& targets = plan.targets[r];
             auto reply = s.ok() ? proto::DecodeReply<proto::c2m::ReadPagesReply>(h, b)
                                 : Result<proto::c2m::ReadPagesReply>(s);
             if (reply.ok() && (reply->pages.size() != targets.size() || reply->previous.size() != targets.size())) {
               reply = ProtocolError("short reply to a read");
             }
             if (!reply.ok()) {
               OnFailure(reply.status(), plan.requests[r].first, targets, pages);
               return;
             }
             for (size_t n = 0; n < targets.size(); ++n) {
               PageState& p = pages[targets[n].page];
               const int j = targets[n].share;
               const proto::c2m::PageData &cur = reply->pages[n], &prev = reply->previous[n];
               if (!ShareOk(cur, slot)) continue;  // a bad share counts as missing
               std::memcpy(&p.cur[j * slot], cur.data.data(), slot);
               p.cur_v[j] = cur.version;
               p.prev_v[j] = kAbsent;
               if (ShareOk(prev, slot)) {
                 std::memcpy(&p.prev[j * slot], prev.data.data(), slot);
                 p.prev_v[j] = prev.version;
               }
               p.have |= 1u << j;
             }
           });
}

void Resolver::WriteShares(const RegionMap& map, std::vector<PageState>& pages) {
  const uint32_t slot = map.codec().slot_size();
  Plan<proto::c2m::WritePages, Target> plan;
  const proto::c2m::WritePages blank{.region = map.info().id,
                                     .epoch = map.epoch(),
                                     .writer = tracker_->writer(),
                                     .done_below = tracker_->done_below(),
                                     .mode = proto::c2m::WriteMode::kResolve};
  for (size_t i = 0; i < pages.size(); ++i) {
    PageState& p = pages[i];
    if (p.settled) continue;
    for (int j = 0; j < map.width(); ++j) {
      uint32_t f = map.FragmentOf(p.page, j);
      const std::string& address = map.AddressOf(f);
      if (map.StateOf(f) == RegionMap::FragmentState::kLost || pool_->IsDown(address)) continue;
      plan.For(address, blank, {i, j})
          .pages.push_back({{f, map.SlotOf(p.page)}, p.version, Crc32c(p.share[j], slot),
                            proto::ByteSpan(p.share[j], slot)});
    }
  }
  Exchange(*pool_, plan.requests, timeout_ms_,
           [&](size_t r, const Status& s, const proto::FrameHeader& h, proto::ByteSpan b) {
             const std::vector<Target>& targets = plan.targets[r];
             auto reply = s.ok() ? proto::DecodeReply<proto::c2m::WritePagesReply>(h, b)
                                 : Result<proto::c2m::WritePagesReply>(s);
             if (!reply.ok()) {
               OnFailure(reply.status(), plan.requests[r].first, targets, pages);
               return;
             }
             // A share holding a newer version is settled already: only
             // another writer's unfinished write keeps the page open.
             for (const proto::c2m::Unapplied& u : reply->unapplied) {
               if (u.index < targets.size() && u.reason == proto::c2m::Unapplied::Reason::kConflict) {
                 pages[targets[u.index].page].conflict = true;
               }
             }
           });
}

}  // namespace tessera::client
