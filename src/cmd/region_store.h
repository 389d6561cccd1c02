// The regions of a `tessera run`: the program's, the clones its forked
// children are served from (vnode::ImageStore), and those of the other
// processes of the program's that exec'd (Fresh), all held by a lease that
// `tessera run` renews while it lives. If it is killed, the controller
// deletes them once their lease runs out (c2ctl.h), so no region is orphaned
// for long.
//
// Ownership: Leases owns its renewal thread; a RegionStore owns its Region
// and, if `owned`, deletes the region on destruction. Both borrow the Client.
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "tessera/client.h"
#include "vnode/agent.h"

namespace tessera::cmd {

class Leases {
 public:
  // Renews the names it holds every lease_ms / 4.
  Leases(Client& client, uint32_t lease_ms);
  ~Leases();
  Leases(const Leases&) = delete;
  Leases& operator=(const Leases&) = delete;

  uint32_t lease_ms() const { return lease_ms_; }
  void Add(const std::string& name);
  void Remove(const std::string& name);

 private:
  void Loop();

  Client& client_;
  const uint32_t lease_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> names_;  // guarded by mu_
  bool stop_ = false;            // guarded by mu_
  std::thread thread_;
};

class RegionStore final : public vnode::ImageStore {
 public:
  // Regions made from the program's, counted to be named (and reported).
  struct Made {
    std::atomic<int> copies{0};  // Clone
    std::atomic<int> fresh{0};   // Fresh
  };
  // `region` is held by `leases` (the caller added it). Clones and fresh
  // regions are named after the program's region, numbered in `made`.
  // `layout` is the region's (RegionOptions::layout), for Fresh.
  RegionStore(Client& client, Leases& leases, std::unique_ptr<Region> region, std::string layout, bool owned,
              std::shared_ptr<Made> made);
  ~RegionStore() override;

  std::unique_ptr<IoQueue> NewQueue() override;
  Result<std::unique_ptr<vnode::ImageStore>> Clone() override;
  // A new, empty region of the same size, redundancy and layout.
  Result<std::unique_ptr<vnode::ImageStore>> Fresh();

 private:
  // A store that holds `region` (just made from ours) by lease and deletes it.
  std::unique_ptr<vnode::ImageStore> Own(std::unique_ptr<Region> region);

  Client& client_;
  Leases& leases_;
  std::unique_ptr<Region> region_;
  const std::string layout_;
  const bool owned_;
  std::shared_ptr<Made> made_;
};

}  // namespace tessera::cmd
