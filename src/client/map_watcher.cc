#include "client/map_watcher.h"

#include <chrono>

#include "client/region_impl.h"
#include "net/rpc.h"

namespace tessera::client {
namespace {

// After a failed poll (no leader yet, the controller unreachable).
constexpr auto kPauseAfterFailure = std::chrono::milliseconds(200);

}  // namespace

MapWatcher::MapWatcher(std::unique_ptr<net::ClientTransport> transport, net::ControllerList* controllers,
                       Options options)
    : transport_(std::move(transport)), controllers_(controllers), options_(options), thread_([this] { Run(); }) {}

MapWatcher::~MapWatcher() {
  std::shared_ptr<net::Connection> conn;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    conn = conn_;
  }
  cv_.notify_all();
  if (conn) conn->Abort(Cancelled("the client is closing"));
  thread_.join();
}

void MapWatcher::Add(RegionImpl* region) {
  {
    std::lock_guard lk(mu_);
    if (!regions_.contains(region->id())) {
      restart_ = true;
      if (conn_) conn_->Abort(Cancelled("a region was added to the watch"));
    }
    regions_.emplace(region->id(), region);
  }
  cv_.notify_all();
}

void MapWatcher::Remove(RegionImpl* region) {
  std::lock_guard lk(mu_);
  auto [first, last] = regions_.equal_range(region->id());
  for (auto it = first; it != last; ++it) {
    if (it->second == region) {
      regions_.erase(it);
      break;
    }
  }
  if (!regions_.contains(region->id())) gone_.erase(region->id());
}

std::vector<proto::c2ctl::WatchedRegion> MapWatcher::Watched() const {
  std::vector<proto::c2ctl::WatchedRegion> out;
  for (const auto& [id, region] : regions_) {
    if (gone_.contains(id) || out.size() >= proto::c2ctl::kMaxWatchedRegions) continue;
    const uint64_t epoch = region->Current()->epoch();
    if (!out.empty() && out.back().id == id) {
      out.back().epoch = std::min(out.back().epoch, epoch);
    } else {
      out.push_back({id, epoch});
    }
  }
  return out;
}

void MapWatcher::Run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    restart_ = false;  // the list below has every region added so far
    std::vector<proto::c2ctl::WatchedRegion> watched = Watched();
    if (watched.empty()) {
      cv_.wait(lk);
      continue;
    }
    lk.unlock();
    Result<proto::c2ctl::MapChanges> changes = Poll(watched);
    lk.lock();
    if (stop_) break;
    if (!changes.ok()) {
      if (!restart_) cv_.wait_for(lk, kPauseAfterFailure);
      continue;
    }
    for (proto::c2ctl::RegionInfo& info : changes->maps) {
      auto [first, last] = regions_.equal_range(info.id);
      for (auto it = first; it != last; ++it) it->second->Install(info);
    }
    for (uint64_t id : changes->gone) {
      if (regions_.contains(id)) gone_.insert(id);
    }
  }
}

Result<proto::c2ctl::MapChanges> MapWatcher::Poll(const std::vector<proto::c2ctl::WatchedRegion>& watched) {
  const std::string addr = controllers_->current();
  std::shared_ptr<net::Connection> conn;
  {
    std::lock_guard lk(mu_);
    if (conn_ && (conn_->broken() || conn_->peer() != addr)) conn_.reset();
    conn = conn_;
  }
  if (!conn) {
    Result<std::shared_ptr<net::Connection>> made = transport_->Connect(addr);
    if (!made.ok()) {
      controllers_->Next(addr);
      return made.status();
    }
    std::lock_guard lk(mu_);
    if (stop_ || restart_) return Cancelled("the client is closing, or the regions to watch changed");
    conn = conn_ = *made;
  }
  // Stopping, and a region added meanwhile, abort this connection: the call
  // ends at once (its connection is the watcher's own).
  Result<proto::c2ctl::MapChanges> changes =
      net::Call(*transport_, *conn, proto::c2ctl::WatchMaps{.hold_ms = static_cast<uint32_t>(options_.hold_ms),
                                                            .regions = watched},
                options_.hold_ms + options_.timeout_ms);
  if (!changes.ok() && changes.status().code() == Code::kNotLeader) controllers_->Next(addr);
  return changes;
}

}  // namespace tessera::client
