// Context: everything the controller's request handlers share — options, the
// cluster state and its store, and the connections to memory nodes. Owned by
// the Controller; handlers receive it by reference.
//
// Thread-safety: used only on the controller's server thread.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "controller/cluster_state.h"
#include "controller/meta_store.h"
#include "controller/placement.h"
#include "controller/rebuild_job.h"
#include "net/rpc.h"
#include "net/transport.h"

namespace tessera::controller {

struct Options {
  std::string listen = "127.0.0.1:7070";
  // Where the metadata log lives (created if missing).
  std::string data_dir = "/var/lib/tessera";
  // A node is dead after this long without a heartbeat.
  uint32_t node_timeout_ms = 2000;
  // Region stripes are this many pages (the unit of placement).
  uint32_t pages_per_stripe = 256;
  int memnode_timeout_ms = 5000;
  // Caps the bytes a rebuild writes per second (0: no cap).
  uint64_t rebuild_rate_limit = 0;
  // How often the controller checks for dead nodes and lost fragments.
  uint32_t tick_ms = 100;
};

struct Context {
  Context(const Options& o, std::unique_ptr<MetaStore> s, std::unique_ptr<net::ClientTransport> t)
      : options(o), store(std::move(s)), state(store.get()), transport(std::move(t)) {}

  bool Alive(const NodeRecord& n, uint64_t now_ns) const {
    return now_ns - n.last_heartbeat_ns < static_cast<uint64_t>(options.node_timeout_ms) * 1'000'000;
  }
  // Node `id` is registered and alive.
  bool NodeAlive(uint64_t id, uint64_t now_ns) {
    auto it = state.nodes().find(id);
    return it != state.nodes().end() && Alive(it->second, now_ns);
  }
  // A live connection to node `id`, made on first use and after a failure.
  Result<net::Connection*> ConnectTo(uint64_t id);
  // Sends `req` to node `id` (connecting first if need be) and waits for its
  // reply; the status of either step.
  template <typename Req>
  Status CallNode(uint64_t id, const Req& req, int timeout_ms) {
    Result<net::Connection*> conn = ConnectTo(id);
    if (!conn.ok()) return conn.status();
    return net::Call(*transport, **conn, req, timeout_ms).status();
  }
  // Every live node with the space the controller has not placed on it.
  std::vector<NodeSlot> LiveNodeSpace();

  Options options;
  std::unique_ptr<MetaStore> store;
  ClusterState state;
  std::unique_ptr<net::ClientTransport> transport;
  std::map<uint64_t, std::shared_ptr<net::Connection>> conns;
  // Nodes declared dead (their fragments marked lost); soft state.
  std::set<uint64_t> declared_dead;
  // The running rebuild, if any, and the region it is for.
  std::unique_ptr<RebuildJob> rebuild;
  std::string rebuild_region;
  uint64_t last_rebuild_failure_ns = 0;
  // When DetectFailures last ran: a longer gap means this thread was deaf.
  uint64_t last_failure_check_ns = 0;
  // When each leased region's lease was last renewed; soft state (a
  // controller that restarts gives every lease a full term again).
  std::map<std::string, uint64_t> lease_renewed_ns;
};

}  // namespace tessera::controller
