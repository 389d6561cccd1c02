#include "ctlplane/election.h"

#include <chrono>

namespace tessera::ctlplane {
namespace {

// The candidate that has waited longest: the lowest create revision.
std::optional<KeyValue> Oldest(const RangeResult& r) {
  std::optional<KeyValue> oldest;
  for (const KeyValue& kv : r.kvs) {
    if (!oldest || kv.create_revision < oldest->create_revision) oldest = kv;
  }
  return oldest;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<Election>> Election::Join(Store& store, Options options) {
  if (options.name.empty()) return InvalidArgument("an election needs a name");
  std::unique_ptr<Election> e(new Election(store, std::move(options)));
  TS_ASSIGN_OR_RETURN(e->lease_, store.Grant(e->options_.ttl_seconds));
  e->key_ = e->options_.name + "/" + std::to_string(e->lease_);
  TS_ASSIGN_OR_RETURN(TxnResult put, store.Txn({Compare::Absent(e->key_)},
                                               {Op::Put(e->key_, e->options_.value, e->lease_)}, {}));
  if (!put.succeeded) return Internal("candidate key " + e->key_ + " exists already");
  e->put_revision_ = put.revision;
  Election* self = e.get();
  TS_ASSIGN_OR_RETURN(e->watch_, store.WatchPrefix(e->options_.name + "/", put.revision + 1,
                                                   [self](WatchBatch) { self->Check(); }));
  e->renewer_ = std::thread([self] { self->Renew(); });
  e->Check();
  return e;
}

Election::~Election() { Resign().IgnoreError(); }

void Election::Check() {
  Result<RangeResult> r = store_.GetPrefix(options_.name + "/");
  if (!r.ok() || lost_.load()) return;  // the next change, or the renewal, decides
  std::optional<KeyValue> oldest = Oldest(*r);
  if (oldest && oldest->key == key_ && !leading_.exchange(true)) {
    std::lock_guard lk(mu_);
    cv_.notify_all();
  }
}

void Election::Renew() {
  const auto every = std::chrono::milliseconds(options_.ttl_seconds * 1000 / 3);
  int64_t renewed = NowMs();
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, every, [&] { return stopping_; })) {
    lk.unlock();
    Status s = store_.KeepAlive(lease_);
    // A follower's watch may have ended (an error batch, a compacted
    // revision): looking at every renewal bounds how late it notices.
    if (s.ok() && !leading_.load()) Check();
    lk.lock();
    if (s.ok()) {
      renewed = NowMs();
      continue;
    }
    // An unreachable store may come back before the lease runs out; an
    // expired lease will not.
    if (s.code() != Code::kNotFound && NowMs() - renewed < options_.ttl_seconds * 1000) continue;
    lost_ = true;
    leading_ = false;
    cv_.notify_all();
    lk.unlock();
    if (options_.on_lost) options_.on_lost();
    return;
  }
}

bool Election::WaitLeader(int64_t timeout_ms) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return leading_.load() || lost_.load(); });
  return leading_.load();
}

Status Election::Resign() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return Status::Ok();
    stopping_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  watch_.reset();
  leading_ = false;
  return store_.Revoke(lease_);
}

Result<std::optional<KeyValue>> Election::Leader(Store& store, const std::string& name) {
  TS_ASSIGN_OR_RETURN(RangeResult r, store.GetPrefix(name + "/"));
  return Oldest(r);
}

}  // namespace tessera::ctlplane
