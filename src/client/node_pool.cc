#include "client/node_pool.h"

#include <algorithm>

#include "common/clock.h"

namespace tessera::client {
namespace {

constexpr uint32_t kMaxBackoffShift = 4;  // retry_down_ms × 16 at most

}  // namespace

Result<std::shared_ptr<net::Connection>> NodePool::Get(const std::string& address, bool probe) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(address);
  if (it != conns_.end() && !(probe ? it->second->PeerHungUp() : it->second->broken())) return it->second;
  auto down = down_.find(address);
  if (!probe && down != down_.end() && NowNanos() < down->second.until_ns) {
    return Unavailable("memory node " + address + " is down");
  }
  // Connecting under the lock keeps one connection per node; it only blocks
  // other callers while a node is being (re)connected.
  Result<std::shared_ptr<net::Connection>> c = transport_->Connect(address);
  if (!c.ok()) {
    if (probe) return c.status();  // the control path: the caller says what it was reaching
    MarkDownLocked(address);
    return c.status().With("memory node " + address);
  }
  down_.erase(address);
  conns_[address] = *c;
  return *c;
}

void NodePool::MarkDown(const std::string& address) {
  std::lock_guard lk(mu_);
  MarkDownLocked(address);
}

void NodePool::MarkDownLocked(const std::string& address) {
  Down& d = down_[address];
  const uint64_t now = NowNanos();
  if (now < d.until_ns) return;  // already down: one failure, however many requests saw it
  const uint32_t shift = std::min(d.failures, kMaxBackoffShift);
  ++d.failures;
  d.until_ns = now + (uint64_t{retry_down_ms_} << shift) * 1'000'000;
}

bool NodePool::IsDown(const std::string& address) {
  std::lock_guard lk(mu_);
  auto down = down_.find(address);
  return down != down_.end() && NowNanos() < down->second.until_ns;
}

}  // namespace tessera::client
