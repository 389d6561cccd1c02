#include "client/region_impl.h"

#include <algorithm>
#include <random>

#include "common/clock.h"
#include "net/rpc.h"
#include "proto/c2m.h"

namespace tessera::client {
namespace {

uint64_t NewWriterId() {
  std::random_device rd;
  uint64_t id = (uint64_t{rd()} << 32 | rd()) ^ NowNanos();
  return id == 0 ? 1 : id;
}

constexpr int kCloseTimeoutMs = 500;

}  // namespace

RegionImpl::RegionImpl(std::shared_ptr<const RegionMap> map, FetchMap fetch, NodePool* pool, VersionClock* clock,
                       std::atomic<int>* live, int timeout_ms, MapWatcher* watcher)
    : map_(std::move(map)),
      fetch_(std::move(fetch)),
      pool_(pool),
      clock_(clock),
      live_(live),
      timeout_ms_(timeout_ms),
      watcher_(watcher),
      writes_(NewWriterId()) {
  live_->fetch_add(1);
  if (watcher_ != nullptr) watcher_->Add(this);
}

RegionImpl::~RegionImpl() {
  if (watcher_ != nullptr) watcher_->Remove(this);
  SayDone();
  live_->fetch_sub(1);
}

void RegionImpl::SayDone() {
  if (!writes_.TakeWroteSince()) return;
  // Best effort: a node that misses this keeps the undo copies until the
  // page is written again (or settles them as orphaned).
  std::shared_ptr<const RegionMap> map = Current();
  proto::c2m::WritePages done{.region = id(), .epoch = map->epoch(), .writer = writes_.writer(),
                              .done_below = writes_.done_below()};
  for (const std::string& address : map->addresses()) {
    if (pool_->IsDown(address)) continue;
    auto conn = pool_->Get(address);
    if (conn.ok()) net::Call(pool_->transport(), **conn, done, kCloseTimeoutMs).status().IgnoreError();
  }
}

std::vector<std::string> RegionImpl::NodeOfEachFragment() const {
  std::shared_ptr<const RegionMap> map;
  {
    std::lock_guard lk(mu_);
    map = map_;
  }
  std::vector<std::string> out;
  for (uint16_t i : map->info().fragment_nodes) out.push_back(map->addresses()[i]);
  return out;
}

std::shared_ptr<const RegionMap> RegionImpl::Current() {
  std::lock_guard lk(mu_);
  return map_;
}

Status RegionImpl::Refresh(uint64_t stale_epoch) {
  if (Current()->epoch() > stale_epoch) return Status::Ok();
  TS_ASSIGN_OR_RETURN(proto::c2ctl::RegionInfo info, fetch_());
  if (info.id != id()) return NotFound("region '" + name() + "' was deleted");
  TS_ASSIGN_OR_RETURN(auto map, RegionMap::Make(std::move(info)));
  std::lock_guard lk(mu_);
  // Same epoch: the controller may still know more — nodes it has since
  // declared dead show as lost fragments before a new map is published.
  if (map->epoch() >= map_->epoch()) map_ = std::move(map);
  // The node that refused us has seen a map the controller has not handed
  // out yet only in a race with a map change; the retry will tell.
  return Status::Ok();
}

void RegionImpl::Install(proto::c2ctl::RegionInfo info) {
  if (info.id != id()) return;
  // A map that does not make sense is left alone: a StaleMap reply still
  // makes the region fetch one.
  Result<std::shared_ptr<const RegionMap>> map = RegionMap::Make(std::move(info));
  if (!map.ok()) return;
  std::lock_guard lk(mu_);
  if ((*map)->epoch() > map_->epoch()) map_ = std::move(*map);
}

Status RegionImpl::Read(uint64_t first_page, uint64_t count, void* buf) {
  return Sync(PageIo::Kind::kRead, first_page, count, buf);
}

Status RegionImpl::Write(uint64_t first_page, uint64_t count, const void* buf) {
  return Sync(PageIo::Kind::kWrite, first_page, count, const_cast<void*>(buf));
}

std::unique_ptr<IoQueue> RegionImpl::NewQueue(const QueueOptions& options) { return NewQueueImpl(options); }

std::unique_ptr<IoQueueImpl> RegionImpl::NewQueueImpl(const QueueOptions& options) {
  return std::make_unique<IoQueueImpl>(this, pool_, clock_, &writes_, options, timeout_ms_);
}

Status RegionImpl::Sync(PageIo::Kind kind, uint64_t first_page, uint64_t count, void* buf) {
  if (count == 0) return Status::Ok();
  IoQueueImpl queue(this, pool_, clock_, &writes_, {.depth = 256, .max_batch_pages = 64}, timeout_ms_);
  // A PageIo counts pages in 32 bits; split larger calls.
  std::vector<PageIo> ios;
  for (uint64_t done = 0; done < count;) {
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count - done, 1u << 30));
    ios.push_back({kind, first_page + done, n, static_cast<uint8_t*>(buf) + done * page_size(), ios.size()});
    done += n;
  }
  TS_RETURN_IF_ERROR(queue.Submit(ios));
  std::vector<Completion> done;
  Result<size_t> reaped = queue.Reap(&done, ios.size(), timeout_ms_);
  if (!reaped.ok()) {
    // Nothing may land in buf after we return: fail what is still in flight,
    // which completes it with the address of the node that did not answer.
    queue.AbortInFlight(TimedOut("no reply within " + std::to_string(timeout_ms_) + " ms"));
    TS_RETURN_IF_ERROR(queue.Reap(&done, ios.size(), timeout_ms_).status());
  }
  for (const Completion& c : done) TS_RETURN_IF_ERROR(c.status);
  return Status::Ok();
}

}  // namespace tessera::client
