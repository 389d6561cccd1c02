// MapWatcher: keeps a Client's open regions on their newest maps without
// polling. A thread of its own long-polls the leading controller
// (c2ctl::WatchMaps) with the epoch of each region's map and installs a newer
// map as soon as the controller publishes one: a node declared dead is passed
// over before a request to it fails, a rebuilt fragment is read from its new
// node. Regions keep their refresh on a StaleMap reply; this makes it rare.
// After a fail-over the next poll goes to the new leader with the same epochs
// and misses nothing.
//
// The watcher has a transport of its own. A transport's receiving is done by
// whichever thread waits (net/transport.h), and a long poll waits for
// seconds: on the data path's transport the poll's thread would receive the
// page replies and hand each to the waiting I/O thread, a cross-core wake-up
// (~35 us on a 2-vCPU VM) per reply — which doubled the read latency and
// halved batched reads from the day the watch landed until it got its own.
//
// Ownership: owns its transport; borrows the controller list (the Client's,
// which outlives it). Regions Add themselves and Remove before they go.
// Thread-safety: thread-safe. A region's Install runs on the watcher's thread
// under its lock, so Remove waits for one in progress.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "net/controller_list.h"
#include "net/transport.h"
#include "proto/c2ctl.h"

namespace tessera::client {

class RegionImpl;

class MapWatcher {
 public:
  struct Options {
    // How long the controller may hold a poll with nothing to say.
    int hold_ms = 5000;
    // How long past the hold an answer may take before the poll is given up.
    int timeout_ms = 10000;
  };
  MapWatcher(std::unique_ptr<net::ClientTransport> transport, net::ControllerList* controllers, Options options);
  // Stops the thread, aborting a poll in flight.
  ~MapWatcher();

  void Add(RegionImpl* region);
  void Remove(RegionImpl* region);

 private:
  void Run();
  // One poll of the leading controller; moves on to the next controller when
  // this one is down or a standby.
  Result<proto::c2ctl::MapChanges> Poll(const std::vector<proto::c2ctl::WatchedRegion>& watched);
  // The regions to ask about, each with the oldest epoch a handle holds. mu_ held.
  std::vector<proto::c2ctl::WatchedRegion> Watched() const;

  std::unique_ptr<net::ClientTransport> transport_;
  net::ControllerList* controllers_;
  const Options options_;
  std::atomic<bool> stop_{false};
  // A region not in the poll in flight was added: its connection is aborted
  // and the next poll, with the region, goes at once rather than after the
  // hold and the pause after a failure.
  std::atomic<bool> restart_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<uint64_t, RegionImpl*> regions_;  // by region id; guarded by mu_
  std::set<uint64_t> gone_;                        // deleted regions still open; guarded by mu_
  std::shared_ptr<net::Connection> conn_;          // guarded by mu_
  std::thread thread_;
};

}  // namespace tessera::client
