#include "ctlplane/embedded_store.h"

#include <chrono>
#include <optional>

#include "common/check.h"
#include "common/log.h"

namespace tessera::ctlplane {

class EmbeddedStore::WatchHandle final : public Watch {
 public:
  WatchHandle(EmbeddedStore* store, uint64_t id) : store_(store), id_(id) {}
  ~WatchHandle() override { store_->Unwatch(id_); }

 private:
  EmbeddedStore* const store_;
  const uint64_t id_;
};

EmbeddedStore::EmbeddedStore(Options options) : options_(std::move(options)) {
  CHECK(options_.path.empty()) << "a store on a log is made by EmbeddedStore::Open";
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  if (options_.expiry_thread) expiry_ = std::thread([this] { ExpiryLoop(); });
}

Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::Open(Options options) {
  const std::string path = std::exchange(options.path, {});
  auto store = std::make_unique<EmbeddedStore>(std::move(options));
  if (path.empty()) return store;
  std::lock_guard lk(store->mu_);
  TS_ASSIGN_OR_RETURN(store->log_, StoreLog::Open(path, &store->kvs_, &store->revision_));
  // A lease id from before a restart must not name a new lease: start past
  // any the last run could have granted.
  store->next_lease_ =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return store;
}

EmbeddedStore::~EmbeddedStore() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  stop_cv_.notify_all();
  if (expiry_.joinable()) expiry_.join();
  dispatcher_.join();
}

int64_t EmbeddedStore::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<Revision> EmbeddedStore::Put(const std::string& key, const std::string& value, LeaseId lease) {
  TS_ASSIGN_OR_RETURN(TxnResult r, Txn({}, {Op::Put(key, value, lease)}, {}));
  return r.revision;
}

Result<Revision> EmbeddedStore::Delete(const std::string& key) {
  TS_ASSIGN_OR_RETURN(TxnResult r, Txn({}, {Op::Delete(key)}, {}));
  return r.revision;
}

Result<RangeResult> EmbeddedStore::Get(const std::string& key) {
  std::lock_guard lk(mu_);
  RangeResult r{.revision = revision_};
  if (auto it = kvs_.find(key); it != kvs_.end()) r.kvs.push_back(it->second);
  return r;
}

Result<RangeResult> EmbeddedStore::GetPrefix(const std::string& prefix) {
  std::lock_guard lk(mu_);
  RangeResult r{.revision = revision_};
  for (auto it = kvs_.lower_bound(prefix); it != kvs_.end() && it->first.starts_with(prefix); ++it) {
    r.kvs.push_back(it->second);
  }
  return r;
}

Status EmbeddedStore::CheckOp(const Op& op) const {
  if (op.key.empty()) return InvalidArgument("empty key");
  if (op.kind == Op::Kind::kPut && op.lease != 0 && !leases_.contains(op.lease)) {
    return NotFound("lease " + std::to_string(op.lease) + " does not exist (expired or revoked)");
  }
  return Status::Ok();
}

bool EmbeddedStore::Holds(const Compare& c) const {
  auto it = kvs_.find(c.key);
  switch (c.target) {
    case Compare::Target::kCreateRevision:
      return (it == kvs_.end() ? 0 : it->second.create_revision) == c.revision;
    case Compare::Target::kModRevision:
      return (it == kvs_.end() ? 0 : it->second.mod_revision) == c.revision;
    case Compare::Target::kValue:
      return it != kvs_.end() && it->second.value == c.value;
  }
  return false;
}

Result<TxnResult> EmbeddedStore::Txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                                     const std::vector<Op>& failure) {
  std::unique_lock lk(mu_);
  for (const auto* ops : {&success, &failure}) {
    for (const Op& op : *ops) TS_RETURN_IF_ERROR(CheckOp(op));
  }
  TxnResult r{.succeeded = true};
  for (const Compare& c : compares) r.succeeded = r.succeeded && Holds(c);
  const Revision rev = revision_ + 1;
  const std::vector<Op>& ops = r.succeeded ? success : failure;
  if (log_ != nullptr) {
    std::vector<LoggedChange> changes = Changes(ops, rev);
    if (!changes.empty()) TS_RETURN_IF_ERROR(log_->Append(rev, changes).With("the control-plane store's log"));
  }
  bool changed = false;
  for (const Op& op : ops) {
    if (op.kind == Op::Kind::kPut) {
      ApplyPut(op.key, op.value, op.lease, rev);
      changed = true;
    } else {
      changed = ApplyDelete(op.key, rev) || changed;
    }
  }
  if (changed) revision_ = rev;
  r.revision = revision_;
  if (log_ != nullptr && changed) {
    Status s = log_->MaybeCompact(kvs_, revision_);
    if (!s.ok()) log::Warn("the control-plane store's log stays long: {}", s.ToString());
  }
  lk.unlock();
  cv_.notify_all();
  return r;
}

std::vector<LoggedChange> EmbeddedStore::Changes(const std::vector<Op>& ops, Revision rev) const {
  std::map<std::string, std::optional<KeyValue>> after;  // the keys `ops` touch, as they leave them
  for (const Op& op : ops) {
    auto seen = after.find(op.key);
    const KeyValue* now = nullptr;
    if (seen != after.end()) {
      now = seen->second ? &*seen->second : nullptr;
    } else if (auto it = kvs_.find(op.key); it != kvs_.end()) {
      now = &it->second;
    }
    if (op.kind == Op::Kind::kDelete) {
      if (now != nullptr) after[op.key] = std::nullopt;
      continue;
    }
    KeyValue kv{.key = op.key, .value = op.value, .create_revision = now ? now->create_revision : rev,
                .mod_revision = rev, .lease = op.lease};
    after[op.key] = std::move(kv);
  }
  std::vector<LoggedChange> changes;
  for (auto& [key, kv] : after) {
    // A key under a lease does not outlive the process: to the log it is gone.
    if (!kv || kv->lease != 0) {
      changes.push_back({.deleted = true, .kv = KeyValue{.key = key}});
    } else {
      changes.push_back({.kv = std::move(*kv)});
    }
  }
  return changes;
}

void EmbeddedStore::ApplyPut(const std::string& key, const std::string& value, LeaseId lease, Revision rev) {
  KeyValue& kv = kvs_[key];
  if (kv.create_revision == 0) {
    kv.key = key;
    kv.create_revision = rev;
  }
  if (kv.lease != lease && kv.lease != 0) {
    if (auto l = leases_.find(kv.lease); l != leases_.end()) l->second.keys.erase(key);
  }
  if (lease != 0) leases_[lease].keys.insert(key);
  kv.value = value;
  kv.mod_revision = rev;
  kv.lease = lease;
  Record(rev, {WatchEvent::Type::kPut, kv});
}

bool EmbeddedStore::ApplyDelete(const std::string& key, Revision rev) {
  auto it = kvs_.find(key);
  if (it == kvs_.end()) return false;
  if (it->second.lease != 0) {
    if (auto l = leases_.find(it->second.lease); l != leases_.end()) l->second.keys.erase(key);
  }
  kvs_.erase(it);
  Record(rev, {WatchEvent::Type::kDelete, KeyValue{.key = key, .mod_revision = rev}});
  return true;
}

void EmbeddedStore::Watcher::Queue(Revision rev, const WatchEvent& event) {
  // One batch per revision: a transaction's changes arrive together.
  if (pending.empty() || pending.back().events.back().kv.mod_revision != rev) pending.emplace_back();
  pending.back().events.push_back(event);
}

void EmbeddedStore::Record(Revision rev, WatchEvent event) {
  for (auto& [id, w] : watchers_) {
    if (w.ended || !event.kv.key.starts_with(w.prefix)) continue;
    w.Queue(rev, event);
  }
  history_.push_back({rev, std::move(event)});
  while (history_.size() > options_.history_events) {
    compacted_ = history_.front().revision;
    history_.pop_front();
  }
  // Keep whole revisions: a watch replays a revision entirely or not at all.
  while (!history_.empty() && history_.front().revision == compacted_) history_.pop_front();
}

Result<LeaseId> EmbeddedStore::Grant(int64_t ttl_seconds) {
  if (ttl_seconds < 1) return InvalidArgument("a lease's TTL is at least 1 s, not " + std::to_string(ttl_seconds));
  std::lock_guard lk(mu_);
  LeaseId id = next_lease_++;
  leases_[id] = Lease{.ttl_ms = ttl_seconds * 1000, .deadline_ms = Now() + ttl_seconds * 1000};
  return id;
}

Status EmbeddedStore::KeepAlive(LeaseId lease) {
  std::lock_guard lk(mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) return NotFound("lease " + std::to_string(lease) + " has expired or was revoked");
  it->second.deadline_ms = Now() + it->second.ttl_ms;
  return Status::Ok();
}

Status EmbeddedStore::Revoke(LeaseId lease) {
  {
    std::lock_guard lk(mu_);
    RevokeLocked(lease);
  }
  cv_.notify_all();
  return Status::Ok();
}

void EmbeddedStore::RevokeLocked(LeaseId lease) {
  auto it = leases_.find(lease);
  if (it == leases_.end()) return;
  // Every key of the lease goes at one revision, as a transaction's would.
  std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  if (keys.empty()) return;
  const Revision rev = ++revision_;
  if (log_ != nullptr) {
    // Only the revision: the keys were never in the log.
    Status s = log_->Append(rev, {});
    if (!s.ok()) log::Warn("lease {} expired at revision {}, which a restart will not know: {}", lease, rev, s.ToString());
  }
  for (const std::string& key : keys) ApplyDelete(key, rev);
}

size_t EmbeddedStore::ExpireDue() {
  size_t expired = 0;
  {
    std::lock_guard lk(mu_);
    const int64_t now = Now();
    std::vector<LeaseId> due;
    for (const auto& [id, l] : leases_) {
      if (l.deadline_ms <= now) due.push_back(id);
    }
    for (LeaseId id : due) RevokeLocked(id);
    expired = due.size();
  }
  cv_.notify_all();
  return expired;
}

void EmbeddedStore::ExpiryLoop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lk, std::chrono::milliseconds(50));
    if (stopping_) break;
    lk.unlock();
    ExpireDue();
    lk.lock();
  }
}

Result<std::unique_ptr<Watch>> EmbeddedStore::WatchPrefix(const std::string& prefix, Revision start_revision,
                                                          std::function<void(WatchBatch)> callback) {
  std::unique_lock lk(mu_);
  const uint64_t id = next_watcher_++;
  Watcher& w = watchers_[id];
  w.prefix = prefix;
  w.callback = std::move(callback);
  if (start_revision != 0 && start_revision <= compacted_) {
    w.ended = true;
    w.pending.push_back({.error = InvalidArgument("watch: revision " + std::to_string(start_revision) +
                                                  " is compacted; the oldest kept is " +
                                                  std::to_string(compacted_ + 1))});
  } else if (start_revision != 0) {
    for (const Change& c : history_) {
      if (c.revision < start_revision || !c.event.kv.key.starts_with(prefix)) continue;
      w.Queue(c.revision, c.event);
    }
  }
  lk.unlock();
  cv_.notify_all();
  return std::unique_ptr<Watch>(new WatchHandle(this, id));
}

void EmbeddedStore::Unwatch(uint64_t id) {
  std::unique_lock lk(mu_);
  watchers_.erase(id);
  if (std::this_thread::get_id() == dispatcher_.get_id()) return;  // from its own callback
  cv_.wait(lk, [&] { return running_watcher_ != id; });
}

void EmbeddedStore::DispatchLoop() {
  std::unique_lock lk(mu_);
  for (;;) {
    auto it = watchers_.begin();
    while (it != watchers_.end() && it->second.pending.empty()) ++it;
    if (it == watchers_.end()) {
      if (stopping_) return;
      cv_.wait(lk);
      continue;
    }
    WatchBatch batch = std::move(it->second.pending.front());
    it->second.pending.pop_front();
    std::function<void(WatchBatch)> callback = it->second.callback;  // the watch may go meanwhile
    running_watcher_ = it->first;
    lk.unlock();
    callback(std::move(batch));
    lk.lock();
    running_watcher_ = 0;
    cv_.notify_all();
  }
}

}  // namespace tessera::ctlplane
