// NodePool: the client's connections to memory nodes, one per address, made
// on first use and remade after a failure. All of a Client's regions and
// queues share it, and share its transport (the progress engine).
//
// Thread-safety: thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "net/transport.h"

namespace tessera::client {

class NodePool {
 public:
  explicit NodePool(std::unique_ptr<net::ClientTransport> transport) : transport_(std::move(transport)) {}

  net::ClientTransport& transport() { return *transport_; }
  // A connection to `address` that was not known to be broken. With
  // `probe`, an idle connection whose peer hung up (it restarted) is replaced
  // first — worth a system call on the control path, not per page batch.
  Result<std::shared_ptr<net::Connection>> Get(const std::string& address, bool probe = false);

 private:
  std::unique_ptr<net::ClientTransport> transport_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<net::Connection>> conns_;  // guarded by mu_
};

}  // namespace tessera::client
