// NodePool: the client's connections to memory nodes, one per address, made
// on first use and remade after a failure, and the client's own view of which
// nodes are down. All of a Client's regions and queues share it, and share its
// transport (the progress engine).
//
// A node whose connection failed is marked down at once — I/O goes degraded
// without waiting for the controller to notice — and is tried again after
// retry_down_ms, doubled for each failure in a row up to 16 times: a node
// whose link is cut costs a connect timeout per try, on the thread driving
// I/O, so one that keeps failing is tried less often. A connection made
// clears its record.
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
  // `silence_ms`: how long a node may leave a request unanswered while
  // sending nothing at all before the I/O queues give up on it (io_queue.h).
  NodePool(std::unique_ptr<net::ClientTransport> transport, uint32_t retry_down_ms, uint32_t silence_ms)
      : transport_(std::move(transport)), retry_down_ms_(retry_down_ms), silence_ms_(silence_ms) {}

  net::ClientTransport& transport() { return *transport_; }
  uint32_t silence_ms() const { return silence_ms_; }
  // A connection to `address` that was not known to be broken. With
  // `probe`, an idle connection whose peer hung up (it restarted) is replaced
  // first — worth a system call on the control path, not per page batch.
  // Without `probe` (the data path), a failed connect marks the node down,
  // and a node marked down is Unavailable at once until its time is up.
  Result<std::shared_ptr<net::Connection>> Get(const std::string& address, bool probe = false);

  // Marks the node down (again, if its last mark has run out).
  void MarkDown(const std::string& address);
  bool IsDown(const std::string& address);

 private:
  struct Down {
    uint64_t until_ns = 0;
    uint32_t failures = 0;  // in a row, since the last connection made
  };
  void MarkDownLocked(const std::string& address);

  std::unique_ptr<net::ClientTransport> transport_;
  const uint32_t retry_down_ms_;
  const uint32_t silence_ms_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<net::Connection>> conns_;  // guarded by mu_
  std::map<std::string, Down> down_;                               // guarded by mu_
};

}  // namespace tessera::client
