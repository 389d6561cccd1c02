// EmbeddedStore: the control plane's store for one machine — the Store model
// (store.h) held in the controller's process, with nothing to install or run.
// Revisions, leases, transactions and watches behave as etcd's do, so code
// written against Store runs on either back end.
//
// Durable when opened with a path (Open): every change to a key without a
// lease is in its log (store_log.h) before the call returns. Leases and their
// keys live as long as the object: after a restart they are gone, as if they
// had all expired, and lease ids are not reused.
//
// Leases expire on a thread of the store's (Options::expiry_thread), or when
// the owner calls ExpireDue() — tests drive time through Options::now_ms.
// Watch callbacks run on one dispatcher thread of the store's, in revision
// order; a watch created from an old revision replays the changes since,
// from a bounded history (Options::history_events).
//
// Thread-safety: thread-safe. A watch may be destroyed from its own callback;
// every watch must be destroyed before the store.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "ctlplane/store.h"
#include "ctlplane/store_log.h"

namespace tessera::ctlplane {

class EmbeddedStore final : public Store {
 public:
  struct Options {
    std::function<int64_t()> now_ms;  // monotonic milliseconds; the steady clock if empty
    bool expiry_thread = true;        // false: leases expire only in ExpireDue()
    size_t history_events = 100'000;  // changes kept for watches that start in the past
    std::string path;                 // the log (Open); empty: in memory only
  };

  // A store on `options.path`'s log (created if missing), or in memory only
  // when the path is empty.
  static Result<std::unique_ptr<EmbeddedStore>> Open(Options options);
  // In memory only (options.path must be empty).
  explicit EmbeddedStore(Options options);
  EmbeddedStore() : EmbeddedStore(Options{}) {}
  ~EmbeddedStore() override;

  Result<Revision> Put(const std::string& key, const std::string& value, LeaseId lease) override;
  Result<Revision> Delete(const std::string& key) override;
  Result<RangeResult> Get(const std::string& key) override;
  Result<RangeResult> GetPrefix(const std::string& prefix) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                        const std::vector<Op>& failure) override;
  Result<LeaseId> Grant(int64_t ttl_seconds) override;
  Status KeepAlive(LeaseId lease) override;
  Status Revoke(LeaseId lease) override;
  Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, Revision start_revision,
                                             std::function<void(WatchBatch)> callback) override;

  // Expires every lease whose deadline has passed; returns how many.
  size_t ExpireDue();

 private:
  class WatchHandle;
  struct Lease {
    int64_t ttl_ms = 0;
    int64_t deadline_ms = 0;
    std::set<std::string> keys;
  };
  struct Watcher {
    std::string prefix;
    std::function<void(WatchBatch)> callback;
    std::deque<WatchBatch> pending;
    bool ended = false;  // its last batch, an error, is pending or delivered
    void Queue(Revision rev, const WatchEvent& event);
  };
  struct Change {
    Revision revision = 0;
    WatchEvent event;
  };

  int64_t Now() const;
  // With mu_ held: each applies one change at the revision given, recording
  // it for watchers.
  Status CheckOp(const Op& op) const;
  // What `ops` would change at `rev`, in the log's terms.
  std::vector<LoggedChange> Changes(const std::vector<Op>& ops, Revision rev) const;
  void ApplyPut(const std::string& key, const std::string& value, LeaseId lease, Revision rev);
  bool ApplyDelete(const std::string& key, Revision rev);  // false: no such key
  void Record(Revision rev, WatchEvent event);
  bool Holds(const Compare& c) const;
  void RevokeLocked(LeaseId lease);
  void Unwatch(uint64_t id);
  void DispatchLoop();
  void ExpiryLoop();

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // dispatcher: a batch pending, or stopping; Unwatch: a callback ended
  std::condition_variable stop_cv_;  // the expiry thread: stopping
  bool stopping_ = false;
  Revision revision_ = 1;  // etcd's empty store is at revision 1
  std::unique_ptr<StoreLog> log_;  // null: in memory only
  std::map<std::string, KeyValue> kvs_;
  std::map<LeaseId, Lease> leases_;
  LeaseId next_lease_ = 1;
  std::deque<Change> history_;
  Revision compacted_ = 0;  // history holds every change after this revision
  std::map<uint64_t, Watcher> watchers_;
  uint64_t next_watcher_ = 1;
  uint64_t running_watcher_ = 0;  // whose callback the dispatcher runs now, 0 none
  std::thread dispatcher_;
  std::thread expiry_;
};

}  // namespace tessera::ctlplane
