// Election: one leader among the candidates for a name, on any Store — the
// scheme etcd's own election API uses, built here on the Store interface so
// that the embedded back end has it too:
//   - a candidate puts "<name>/<its lease>" (its value: how to reach it) under
//     a lease it keeps alive;
//   - the candidate whose key has the lowest create revision leads;
//   - a follower watches the candidates' keys and checks again whenever one
//     goes, and at every renewal in case its watch has ended; a leader that stops renewing (killed, cut off) loses its key when
//     the lease expires, and the next one leads.
// Leader() tells anyone — a client looking for the controller — who leads.
//
// Ownership: borrows the Store, which must outlive it; owns its lease (revoked
// by Resign or the destructor) and a thread that renews it.
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "ctlplane/store.h"

namespace tessera::ctlplane {

class Election {
 public:
  struct Options {
    std::string name;         // a key prefix, e.g. "/tessera/controller"
    std::string value;        // what followers and clients read: our address
    int64_t ttl_seconds = 2;  // how long a silent leader keeps leading
    // Called once, from the renewal thread, if this candidate's lease is lost
    // (it could not renew in time): it may no longer lead.
    std::function<void()> on_lost;
  };

  // Enters the election: returns at once, a candidate; Wait() until it leads.
  static Result<std::unique_ptr<Election>> Join(Store& store, Options options);
  ~Election();

  // Blocks until this candidate leads (true), the lease is lost, or
  // `timeout_ms` passes (false either way).
  bool WaitLeader(int64_t timeout_ms);
  bool leading() const { return leading_.load(); }
  // The condition a leader puts on each of its writes (Store::Txn): "my
  // candidate key is still the one I put". It fails once the lease has gone,
  // so a leader that was cut off and replaced cannot overwrite its successor.
  Compare Fence() const { return Compare::ModRevisionIs(key_, put_revision_); }
  // Leaves the election now; the next candidate leads.
  Status Resign();

  // The leader's value and key, nullopt when nobody leads.
  static Result<std::optional<KeyValue>> Leader(Store& store, const std::string& name);

 private:
  Election(Store& store, Options options) : store_(store), options_(std::move(options)) {}
  // Leads if our key is the oldest; called on every change of the candidates.
  void Check();
  void Renew();

  Store& store_;
  const Options options_;
  LeaseId lease_ = 0;
  std::string key_;
  Revision put_revision_ = 0;
  std::atomic<bool> leading_{false};
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable cv_;  // leading_ or lost_ changed, or stopping_
  bool stopping_ = false;
  std::unique_ptr<Watch> watch_;
  std::thread renewer_;
};

}  // namespace tessera::ctlplane
