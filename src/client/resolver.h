// Resolver: settles pages whose write ran into another writer's unfinished
// write (a conflict reply, see proto/c2m.h on the write hole), so that the
// write can go ahead. For each page it reads every reachable share with its
// previous version, takes the newest version k shares hold (ec/version_vote.h),
// and writes that version back to every share in mode kResolve: forward over
// a write that was in fact complete, back over one its writer abandoned.
// A node refuses to roll back a write younger than its orphan timeout (the
// writer may be alive and finishing it), so the resolver tries again until
// the write completes or is orphaned, for up to `budget_ms`.
//
// Runs synchronously on the IoQueue's driving thread, never in a callback:
// conflicts are rare (two writers on one page, or a writer that died), and a
// plain loop is easier to trust than another state machine.
//
// Ownership: borrows the NodePool and WriteTracker. Thread-safety: one
// thread per Resolve call; its reply callbacks only touch state under mu.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "client/node_pool.h"
#include "client/region_map.h"
#include "client/write_tracker.h"

namespace tessera::client {

class Resolver {
 public:
  Resolver(NodePool* pool, WriteTracker* tracker, int budget_ms, int timeout_ms)
      : pool_(pool), tracker_(tracker), budget_ms_(budget_ms), timeout_ms_(timeout_ms) {}

  // One status per page: Ok once the page's shares agree again.
  std::vector<Status> Resolve(const RegionMap& map, std::span<const uint64_t> pages);

 private:
  struct PageState;
  struct Target {
    size_t page;  // index into the pages being settled
    int share;
  };
  // One attempt at the pages not yet settled; returns whether any is left.
  bool Attempt(const RegionMap& map, std::vector<PageState>& pages);
  void ReadShares(const RegionMap& map, std::vector<PageState>& pages);
  void WriteShares(const RegionMap& map, std::vector<PageState>& pages);
  void OnFailure(const Status& s, const std::string& address, const std::vector<Target>& targets,
                 std::vector<PageState>& pages);

  NodePool* pool_;
  WriteTracker* tracker_;
  const int budget_ms_;
  const int timeout_ms_;
};

}  // namespace tessera::client
