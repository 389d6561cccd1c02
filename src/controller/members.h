// Members: which memory nodes hold a membership lease in etcd (memnode/
// membership.h), kept current by a watch on "tessera/members/" — the leading
// controller's word on liveness when the cluster's store is etcd. A key goes
// when its lease expires (the node was killed, or cut off from etcd), and
// with it the node: DetectFailures declares it dead and its rebuild starts.
// Heartbeats still bring usage, but no longer decide who is alive, so a new
// leader knows at once who is, without a grace period.
//
// Ownership: borrows the store, which must outlive it; owns the watch.
// Thread-safety: thread-safe (the watch's callback updates, the controller's
// thread asks).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "common/result.h"
#include "ctlplane/store.h"

namespace tessera::controller {

class Members {
 public:
  // Reads every member, then follows the changes from there.
  static Result<std::unique_ptr<Members>> Follow(ctlplane::Store& store);

  // Node `id` holds a lease as incarnation `incarnation`.
  bool Holds(uint64_t id, uint64_t incarnation) const;
  // The watch ended with an error (its revision compacted, say): Follow
  // again to know the members.
  bool ended() const;

 private:
  Members() = default;
  void Apply(const ctlplane::WatchBatch& batch);

  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> incarnations_;  // by node id
  bool ended_ = false;
  std::unique_ptr<ctlplane::Watch> watch_;
};

}  // namespace tessera::controller
