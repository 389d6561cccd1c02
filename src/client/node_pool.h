// NodePool: the client's connections to memory nodes, one per address, made
// on first use and remade after a failure, and the client's own view of which
// nodes are down. All of a Client's regions and queues share it, and share its
// transport (the progress engine).
//
// A node whose connection failed is marked down at once — I/O goes degraded
// without waiting for the controller to notice — and is tried again after
// Options::retry_down_ms.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "net/transport.h"

namespace tessera::client {

class NodePool {
 public:
  NodePool(std::unique_ptr<net::ClientTransport> transport, uint32_t retry_down_ms)
      : transport_(std::move(transport)), retry_down_ms_(retry_down_ms) {}

  net::ClientTransport& transport() { return *transport_; }
  // A connection to `address` that was not known to be broken. With
  // `probe`, an idle connection whose peer hung up (it restarted) is replaced
  // first — worth a system call on the control path, not per page batch.
  // Without `probe` (the data path), a failed connect marks the node down,
  // and a node marked down in the last retry_down_ms is Unavailable at once.
  Result<std::shared_ptr<net::Connection>> Get(const std::string& address, bool probe = false);

  void MarkDown(const std::string& address);
  bool IsDown(const std::string& address);

 private:
  // Marked down within retry_down_ms; forgets an expired mark. mu_ held.
  bool DownLocked(const std::string& address);

  std::unique_ptr<net::ClientTransport> transport_;
  const uint32_t retry_down_ms_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<net::Connection>> conns_;  // guarded by mu_
  std::map<std::string, uint64_t> down_since_ns_;                  // guarded by mu_
};

}  // namespace tessera::client
