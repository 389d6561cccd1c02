#include "client/node_pool.h"

namespace tessera::client {

Result<std::shared_ptr<net::Connection>> NodePool::Get(const std::string& address, bool probe) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(address);
  if (it != conns_.end() && !(probe ? it->second->PeerHungUp() : it->second->broken())) return it->second;
  // Connecting under the lock keeps one connection per node; it only blocks
  // other callers while a node is being (re)connected.
  Result<std::shared_ptr<net::Connection>> c = transport_->Connect(address);
  if (!c.ok()) return c.status().With("memory node " + address);
  conns_[address] = *c;
  return *c;
}

}  // namespace tessera::client
