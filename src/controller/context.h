// Context: everything the controller's request handlers share — options, the
// cluster state and the control-plane store under it, and the connections to
// memory nodes. Owned by the Controller; handlers receive it by reference.
//
// Thread-safety: used only on the controller's server thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/cluster_state.h"
#include "controller/members.h"
#include "controller/placement.h"
#include "controller/rebuild_job.h"
#include "ctlplane/keys.h"
#include "ctlplane/store.h"
#include "net/rpc.h"
#include "net/transport.h"
#include "proto/c2ctl.h"

namespace tessera::controller {

struct Options {
  std::string listen = "127.0.0.1:7070";
  // Where clients and memory nodes reach this controller, as the leader
  // election publishes it; empty: the address bound.
  std::string advertise;
  // The control-plane store: etcd's client endpoints ("host:port"); empty:
  // the embedded store, a log in data_dir.
  std::vector<std::string> etcd;
  // Where the embedded store's log lives (created if missing).
  std::string data_dir = "/var/lib/tessera";
  // How long a leader that went silent (killed, cut off) keeps leading: its
  // election lease, in seconds. A standby takes over about this long after.
  int64_t leader_ttl_s = 2;
  // With etcd: a memory node's membership lease, in seconds — how long a node
  // killed or cut off stays alive to the cluster before its rebuild starts.
  int64_t member_ttl_s = 2;
  // A node is dead after this long without a heartbeat.
  uint32_t node_timeout_ms = 2000;
  // Region stripes are this many pages (the unit of placement).
  uint32_t pages_per_stripe = 256;
  int memnode_timeout_ms = 5000;
  // How long after a node is declared dead its fragments wait before they are
  // rebuilt elsewhere: a node back within it (a reboot) costs no rebuild.
  uint32_t rebuild_delay_ms = 0;
  // Caps the bytes a rebuild writes per second (0: no cap).
  uint64_t rebuild_rate_limit = 0;
  // How often the controller checks for dead nodes and lost fragments.
  uint32_t tick_ms = 100;
};

// A client's c2ctl::WatchMaps that found nothing newer, kept until a map it
// names changes or its hold runs out.
struct MapWatch {
  net::Deferred reply;
  std::vector<proto::c2ctl::WatchedRegion> regions;
  uint64_t until_ns = 0;
};

struct Context {
  Context(const Options& o, std::unique_ptr<ctlplane::Store> s, std::unique_ptr<net::ClientTransport> t)
      : options(o), store(std::move(s)), state(store.get(), ctlplane::keys::kPrefix), transport(std::move(t)) {}

  // With etcd, a node is alive while it holds its membership lease; on the
  // embedded store, while it heartbeats.
  bool Alive(const NodeRecord& n, uint64_t now_ns) const {
    if (members) return members->Holds(n.id, n.incarnation);
    return now_ns - n.last_heartbeat_ns < static_cast<uint64_t>(options.node_timeout_ms) * 1'000'000;
  }
  // Node `id` is registered, alive, and not declared dead: one declared dead
  // counts again only once Rejoin has dropped what it held, so nothing new is
  // placed on it before that (Rejoin would drop it too).
  bool NodeAlive(uint64_t id, uint64_t now_ns) {
    auto it = state.nodes().find(id);
    return it != state.nodes().end() && Alive(it->second, now_ns) && !declared_dead.contains(id);
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
  std::unique_ptr<ctlplane::Store> store;
  ClusterState state;
  // This controller leads and has loaded the state: it serves requests and
  // runs the ticks. A standby answers NotLeader.
  bool leading = false;
  // Who holds a membership lease (with etcd; null on the embedded store).
  std::unique_ptr<Members> members;
  std::unique_ptr<net::ClientTransport> transport;
  std::map<uint64_t, std::shared_ptr<net::Connection>> conns;
  // Nodes declared dead (their fragments marked lost), and when; soft state.
  std::map<uint64_t, uint64_t> declared_dead;
  // Some declared-dead node's fragments are not yet marked lost in the
  // store: DetectFailures tries again.
  bool losses_unrecorded = false;
  // The running rebuild, if any, and the region it is for.
  std::unique_ptr<RebuildJob> rebuild;
  std::string rebuild_region;
  uint64_t last_rebuild_failure_ns = 0;
  // When DetectFailures last ran: a longer gap means this thread was deaf.
  uint64_t last_failure_check_ns = 0;
  // When each leased region's lease was last renewed; soft state (a
  // controller that restarts gives every lease a full term again).
  std::map<std::string, uint64_t> lease_renewed_ns;
  // The server this controller answers on: map watches are answered later
  // through it (handle_watch_maps.cc).
  net::Server* server = nullptr;
  // Clients' map watches waiting for a change, and the region generation
  // they were last checked at; soft state (a client asks the next leader).
  std::vector<MapWatch> watches;
  uint64_t watches_checked_generation = 0;
};

}  // namespace tessera::controller
