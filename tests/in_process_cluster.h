// InProcessCluster: a controller and N memory nodes running on threads of the
// test process, on loopback ports, with a temporary data directory. For tests
// that need the real protocol end to end and want sanitizers to see both
// sides; tests that kill daemons use DaemonCluster (separate processes).
//
// Thread-safety: construct, use and destroy from one thread.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controller/controller.h"
#include "memnode/memnode.h"

namespace tessera::testing {

struct ClusterOptions {
  int memnodes = 3;
  uint64_t capacity_bytes = 64ull << 20;
  uint32_t pages_per_stripe = 16;
  uint32_t heartbeat_ms = 100;
  uint32_t node_timeout_ms = 2000;
  uint32_t rebuild_delay_ms = 0;
};

class InProcessCluster {
 public:
  explicit InProcessCluster(const ClusterOptions& options);
  ~InProcessCluster();

  const std::string& controller_address() const { return controller_->address(); }
  memnode::Memnode& memnode(int i) { return *memnodes_[i]; }
  // Stops memory node i and closes its sockets, as its process dying would.
  // Returns its address.
  std::string KillMemnode(int i);
  // The index of the running memory node at `address`, or -1.
  int MemnodeAt(const std::string& address) const;
  // Blocks until every memory node has registered and is alive.
  void WaitForNodes();
  // Stops the controller and starts a new one on the same data directory
  // and port, as a controller restart would.
  void RestartController();

 private:
  void StartController(const std::string& listen);

  ClusterOptions options_;
  std::string data_dir_;
  std::unique_ptr<controller::Controller> controller_;
  std::thread controller_thread_;
  std::vector<std::unique_ptr<memnode::Memnode>> memnodes_;
  std::vector<std::thread> memnode_threads_;
};

}  // namespace tessera::testing
