#include "memnode/membership.h"

#include <chrono>

#include "common/log.h"
#include "ctlplane/keys.h"

namespace tessera::memnode {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<Membership>> Membership::Join(std::unique_ptr<ctlplane::Store> store, Options options) {
  if (options.ttl_s < 1) return InvalidArgument("a membership lease is at least 1 s");
  std::unique_ptr<Membership> m(new Membership(std::move(store), options));
  m->confirmed_ms_ = NowMs();
  TS_ASSIGN_OR_RETURN(m->lease_, m->store_->Grant(options.ttl_s));
  ctlplane::Store& store_ref = *m->store_;
  Status put = store_ref.Put(ctlplane::keys::Member(options.node_id), std::to_string(options.incarnation), m->lease_)
                   .status();
  if (!put.ok()) {
    store_ref.Revoke(m->lease_).IgnoreError();
    return put.With("membership key");
  }
  m->renewer_ = std::thread([raw = m.get()] { raw->RenewLoop(); });
  return m;
}

Membership::~Membership() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (!expired_) store_->Revoke(lease_).IgnoreError();
}

bool Membership::fenced() const {
  return expired_.load() || NowMs() - confirmed_ms_.load() >= options_.ttl_s * 1000;
}

void Membership::RenewLoop() {
  const int64_t ttl_ms = options_.ttl_s * 1000;
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, std::chrono::milliseconds(ttl_ms / 3), [&] { return stopping_; })) {
    lk.unlock();
    const int64_t sent = NowMs();
    Status s = store_->KeepAlive(lease_);
    if (s.ok()) {
      confirmed_ms_ = sent;
      if (fenced_.exchange(false)) log::Info("memory node {}: membership lease renewed again; serving", options_.node_id);
    } else if (s.code() == Code::kNotFound) {
      expired_ = true;
      log::Warn("memory node {}: membership lease expired: dead to the cluster, its fragments rebuilt elsewhere",
                options_.node_id);
      return;
    } else if (fenced() && !fenced_.exchange(true)) {
      log::Warn("memory node {}: membership lease unconfirmed for {} ms ({}): refusing page I/O until it is",
                options_.node_id, NowMs() - confirmed_ms_.load(), s.ToString());
    }
    lk.lock();
  }
}

}  // namespace tessera::memnode
