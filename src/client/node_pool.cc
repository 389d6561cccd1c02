#include "client/node_pool.h"

#include "common/clock.h"

namespace tessera::client {

Result<std::shared_ptr<net::Connection>> NodePool::Get(const std::string& address, bool probe) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(address);
  if (it != conns_.end() && !(probe ? it->second->PeerHungUp() : it->second->broken())) return it->second;
  if (!probe && DownLocked(address)) return Unavailable("memory node " + address + " is down");
  // Connecting under the lock keeps one connection per node; it only blocks
  // other callers while a node is being (re)connected.
  Result<std::shared_ptr<net::Connection>> c = transport_->Connect(address);
  if (!c.ok()) {
    if (!probe) down_since_ns_[address] = NowNanos();
    return c.status().With("memory node " + address);
  }
  conns_[address] = *c;
  return *c;
}

void NodePool::MarkDown(const std::string& address) {
  std::lock_guard lk(mu_);
  down_since_ns_.emplace(address, NowNanos());
}

bool NodePool::IsDown(const std::string& address) {
  std::lock_guard lk(mu_);
  return DownLocked(address);
}

bool NodePool::DownLocked(const std::string& address) {
  auto down = down_since_ns_.find(address);
  if (down == down_since_ns_.end()) return false;
  if (NowNanos() - down->second < uint64_t{retry_down_ms_} * 1'000'000) return true;
  down_since_ns_.erase(down);  // its time is up: try it again
  return false;
}

}  // namespace tessera::client
