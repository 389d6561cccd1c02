// ctlplane::Store: the control plane's key/value store, one interface with
// two back ends — the embedded store (one machine, the default) and etcd 3.4
// through its v3 JSON gateway (many machines; etcd_store.h). What the
// controller, memory nodes and clients keep there needs exactly etcd's
// model, so the interface is that model's subset we use:
//   - every change gets the next store-wide revision; a key remembers the
//     revision that created it and the one that last changed it;
//   - a lease is a TTL that must be renewed; keys put under it vanish (a
//     delete, seen by watchers) when it expires or is revoked;
//   - a transaction compares keys' revisions or values, then applies one of
//     two lists of puts and deletes, atomically;
//   - a watch delivers every change under a prefix from a given revision on,
//     in order, so a watcher that reconnects misses nothing;
//   - leader election is built on these (election.h), the same on both.
//
// Keys and values are byte strings. A "prefix" range covers every key that
// starts with it.
//
// Thread-safety: implementations are thread-safe. A Watch's callback runs on
// a thread of the store's; it must not block for long.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera::ctlplane {

using Revision = int64_t;
using LeaseId = int64_t;  // 0: no lease

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  LeaseId lease = 0;
  bool operator==(const KeyValue&) const = default;
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // in key order
  Revision revision = 0;      // the store's revision the range was read at
};

// One condition of a transaction: the key's create or mod revision, or its
// value, equals the given one. An absent key has revisions 0 and no value.
struct Compare {
  enum class Target { kCreateRevision, kModRevision, kValue };
  std::string key;
  Target target = Target::kModRevision;
  Revision revision = 0;
  std::string value;

  static Compare Absent(std::string key) { return {std::move(key), Target::kCreateRevision, 0, {}}; }
  static Compare ModRevisionIs(std::string key, Revision r) { return {std::move(key), Target::kModRevision, r, {}}; }
  static Compare ValueIs(std::string key, std::string v) { return {std::move(key), Target::kValue, 0, std::move(v)}; }
};

struct Op {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  LeaseId lease = 0;

  static Op Put(std::string key, std::string value, LeaseId lease = 0) {
    return {Kind::kPut, std::move(key), std::move(value), lease};
  }
  static Op Delete(std::string key) { return {Kind::kDelete, std::move(key), {}, 0}; }
};

struct TxnResult {
  bool succeeded = false;  // every compare held, and the success ops applied
  Revision revision = 0;   // the store's revision after the transaction
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for a delete: the key, and mod_revision the delete's revision
};

// Handed to a watch's callback: the events of one revision, in order.
// `error` set means the watch has ended — its start revision was compacted,
// or the store sent what does not parse; no call follows it.
struct WatchBatch {
  std::vector<WatchEvent> events;
  Status error;
};

// A live watch; destroying it stops the callbacks (and waits for a running one).
class Watch {
 public:
  virtual ~Watch() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<Revision> Put(const std::string& key, const std::string& value, LeaseId lease = 0) = 0;
  // Deleting an absent key is not an error.
  virtual Result<Revision> Delete(const std::string& key) = 0;
  virtual Result<RangeResult> Get(const std::string& key) = 0;
  virtual Result<RangeResult> GetPrefix(const std::string& prefix) = 0;
  virtual Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                                const std::vector<Op>& failure) = 0;

  // A lease of `ttl_seconds` (≥ 1) from now.
  virtual Result<LeaseId> Grant(int64_t ttl_seconds) = 0;
  // Renews the lease for its TTL; NotFound once it has expired.
  virtual Status KeepAlive(LeaseId lease) = 0;
  // Ends the lease now, deleting its keys. Revoking an expired lease is not an error.
  virtual Status Revoke(LeaseId lease) = 0;

  // Changes under `prefix` from `start_revision` on (0: from now).
  virtual Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, Revision start_revision,
                                                     std::function<void(WatchBatch)> callback) = 0;
};

}  // namespace tessera::ctlplane
