// RegionImpl: tessera::Region over the current RegionMap, which it swaps for
// a newer one from the controller when a memory node reports the map stale
// (MapSource). Synchronous Read/Write run through a private IoQueueImpl so
// there is one page I/O path.
//
// A MapWatcher, if the client has one, installs newer maps as the controller
// publishes them, so a stale map is rarely met at all.
//
// Ownership: shares the Client's NodePool, VersionClock and MapWatcher (which
// must outlive it). Thread-safety: thread-safe; each synchronous call uses its own
// queue; the map pointer is under mu_.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>

#include "client/io_queue.h"
#include "client/map_watcher.h"
#include "client/node_pool.h"
#include "client/region_map.h"
#include "client/version_clock.h"
#include "client/write_tracker.h"
#include "tessera/client.h"

namespace tessera::client {

class RegionImpl final : public Region, public MapSource {
 public:
  using FetchMap = std::function<Result<proto::c2ctl::RegionInfo>()>;
  // `live` counts the client's regions (the Client checks it is 0 when it goes).
  RegionImpl(std::shared_ptr<const RegionMap> map, FetchMap fetch, NodePool* pool, VersionClock* clock,
             std::atomic<int>* live, int timeout_ms, MapWatcher* watcher);
  ~RegionImpl() override;

  uint64_t id() const override { return info().id; }
  const std::string& name() const override { return info().name; }
  uint32_t page_size() const override { return info().page_size; }
  uint64_t num_pages() const override { return info().num_pages; }
  uint32_t pages_per_stripe() const override { return info().pages_per_stripe; }
  std::string redundancy() const override { return info().redundancy.ToString(); }
  std::vector<std::string> NodeOfEachFragment() const override;

  Status Read(uint64_t first_page, uint64_t count, void* buf) override;
  Status Write(uint64_t first_page, uint64_t count, const void* buf) override;
  std::unique_ptr<IoQueue> NewQueue(const QueueOptions& options) override;
  // The same, as the client's own type (span regions drive it).
  std::unique_ptr<IoQueueImpl> NewQueueImpl(const QueueOptions& options);

  std::shared_ptr<const RegionMap> Current() override;
  Status Refresh(uint64_t stale_epoch) override;
  // Takes `info` as the map if it is newer than the one held (MapWatcher).
  void Install(proto::c2ctl::RegionInfo info);

 private:
  Status Sync(PageIo::Kind kind, uint64_t first_page, uint64_t count, void* buf);
  // Tells the nodes this handle's final watermark (best effort).
  void SayDone();
  // Identity and shape never change between epochs; the first map's are used.
  const proto::c2ctl::RegionInfo& info() const { return first_->info(); }

  mutable std::mutex mu_;
  std::shared_ptr<const RegionMap> map_;  // guarded by mu_
  const std::shared_ptr<const RegionMap> first_ = map_;
  FetchMap fetch_;
  NodePool* pool_;
  VersionClock* clock_;
  std::atomic<int>* live_;
  int timeout_ms_;
  MapWatcher* watcher_;
  WriteTracker writes_;
};

}  // namespace tessera::client
