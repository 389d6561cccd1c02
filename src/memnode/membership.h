// Membership: a memory node's place in a cluster whose state is in etcd — the
// key "tessera/members/<node id>" (ctlplane/keys.h; its value: the node's
// incarnation) under a
// lease the node keeps alive. The leading controller watches those keys:
// when a lease expires (the node was killed, or cut off from etcd) its key
// goes, the node is dead to the cluster, and the rebuild of its fragments
// starts — whichever controller leads by then.
//
// A node that cannot renew its lease fences itself. From the moment etcd may
// have expired the lease — its TTL after the sending of the last renewal etcd
// acknowledged — fenced() is true and the node refuses page reads and writes,
// so a client with an old map cannot read what the cluster has since rebuilt
// elsewhere. A renewal that succeeds again lifts the fence. One that finds
// the lease gone makes expired() true for good: the node must drop every
// fragment and register afresh as a new incarnation, with a new Membership.
//
// Ownership: owns its store and a renewal thread; the destructor revokes the
// lease, so a node that stops leaves the cluster at once.
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "ctlplane/store.h"

namespace tessera::memnode {

class Membership {
 public:
  struct Options {
    uint64_t node_id = 0;
    uint64_t incarnation = 0;
    int64_t ttl_s = 2;
  };

  // Grants the lease and puts the member key under it.
  static Result<std::unique_ptr<Membership>> Join(std::unique_ptr<ctlplane::Store> store, Options options);
  ~Membership();

  // Checked per request: the time since the last acknowledged renewal
  // decides, not a renewal that may itself be hanging on a cut link.
  bool fenced() const;
  bool expired() const { return expired_.load(); }

 private:
  Membership(std::unique_ptr<ctlplane::Store> store, Options options)
      : store_(std::move(store)), options_(options) {}
  void RenewLoop();

  std::unique_ptr<ctlplane::Store> store_;
  const Options options_;
  ctlplane::LeaseId lease_ = 0;
  std::atomic<int64_t> confirmed_ms_{0};  // when the last acknowledged renewal (or the grant) was sent
  std::atomic<bool> fenced_{false};       // logged as fenced
  std::atomic<bool> expired_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread renewer_;
};

}  // namespace tessera::memnode
