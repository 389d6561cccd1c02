// ClusterState: the controller's picture of the cluster — memory nodes and
// regions — and its persistence in the control-plane store (ctlplane/store.h:
// embedded on one machine, etcd on many). Durable fields are written through
// on every change; liveness and reported usage are soft state rebuilt from
// heartbeats after a restart or a fail-over.
//
// The store also keeps the cluster's id (proto/m2ctl.h): made by the first
// Load of a store that has none, with the region ids starting at a random
// point, so that a client or memory node of an earlier cluster (a controller
// restarted on an empty store) can never take one region for another.
//
// A store that stops taking writes (a full disk) is reported through
// StoreHealth, once a minute, not once per failed write; ProbeIfDue tries a
// write now and then so that the controller notices when it takes writes again.
//
// Every write is a transaction guarded by the fence the leader election gives
// (Election::Fence): a controller that has lost the leadership — cut off, its
// lease expired, a standby leading in its place — cannot overwrite what its
// successor wrote. Such a write fails with NotLeader and sets fenced_out().
//
// Keys, under the prefix given: "node/<id>", "region/<name>",
// "meta/next_node_id", "meta/next_region_id", "meta/cluster_id",
// "meta/probe"; values are JSON (nlohmann) or decimal numbers.
//
// Ownership: borrows the store. Thread-safety: not thread-safe; owned by the
// controller's server thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "controller/store_health.h"
#include "ctlplane/store.h"
#include "proto/c2ctl.h"

namespace tessera::controller {

struct NodeRecord {
  uint64_t id = 0;
  std::string addr;
  uint64_t capacity = 0;
  uint64_t incarnation = 0;
  std::string domain;
  // Soft state.
  uint64_t reported_used = 0;
  uint64_t rss = 0;
  uint64_t last_heartbeat_ns = 0;
  // When it registered (or this controller loaded it): with etcd, a node has
  // until a membership term after this to put its key before it counts as dead.
  uint64_t registered_ns = 0;
};

enum class RegionState { kCreating, kReady, kDeleting };

// A region and its map: stripe s holds pages [s*pages_per_stripe, ...) as
// width() fragments, fragment s*width()+j on node fragment_nodes[s*width()+j]
// (proto/c2ctl.h has the layout). epoch grows with every map change.
struct RegionRecord {
  using FragmentState = proto::c2ctl::FragmentState;
  uint64_t id = 0;
  std::string name;
  RegionState state = RegionState::kCreating;
  uint32_t page_size = 0;
  uint64_t num_pages = 0;
  uint32_t pages_per_stripe = 0;
  proto::Redundancy redundancy;
  uint64_t epoch = 1;
  std::vector<uint64_t> fragment_nodes;  // node id of each fragment
  std::vector<FragmentState> fragment_states;
  uint32_t lease_ms = 0;  // 0: lives until deleted (c2ctl.h)

  int width() const { return redundancy.width(); }
  uint64_t stripe_count() const { return (num_pages + pages_per_stripe - 1) / pages_per_stripe; }
  uint32_t fragment_count() const { return static_cast<uint32_t>(fragment_nodes.size()); }
  uint32_t slot_size() const { return proto::c2ctl::SlotSize(page_size, redundancy.k); }
  // Pages in each fragment of stripe s (the last stripe may be short).
  uint32_t StripePages(uint64_t s) const;
  uint64_t FragmentBytes(uint32_t f) const {
    return static_cast<uint64_t>(StripePages(f / width())) * slot_size();
  }
};

class ClusterState {
 public:
  ClusterState(ctlplane::Store* store, std::string prefix, StoreHealth::Options health = {})
      : store_(store), prefix_(std::move(prefix)), health_(std::move(health)) {}

  // The condition every write carries from now on.
  void SetFence(ctlplane::Compare fence) { fence_ = std::move(fence); }
  // A write found the fence gone: this controller no longer leads.
  bool fenced_out() const { return fenced_out_; }

  // Reads every record, replacing what was held; nodes start with
  // last_heartbeat_ns = now_ns so they get one heartbeat timeout of grace
  // after a controller restart or a fail-over. Makes the cluster's id if the
  // store has none.
  Status Load(uint64_t now_ns);

  // Never 0 after a successful Load.
  uint64_t cluster_id() const { return cluster_id_; }
  // The last write failed for the store's sake (not a lost leadership).
  bool store_failing() const { return health_.failing(); }
  // While the store fails, tries a write once in a while (StoreHealth).
  void ProbeIfDue();

  std::map<uint64_t, NodeRecord>& nodes() { return nodes_; }
  const std::map<std::string, RegionRecord>& regions() const { return regions_; }

  Result<uint64_t> NewNodeId() { return NextId("meta/next_node_id", &next_node_id_); }
  Result<uint64_t> NewRegionId() { return NextId("meta/next_region_id", &next_region_id_); }

  Status PutNode(const NodeRecord& n);
  Status PutRegion(const RegionRecord& r);
  Status DeleteRegion(const std::string& name);
  // Drops a region from memory only (its record could not be deleted).
  void Forget(const std::string& name) {
    regions_.erase(name);
    ++region_generation_;
  }
  // Grows with every region written or deleted (and Load): whoever follows
  // maps checks them again only when it moved.
  uint64_t region_generation() const { return region_generation_; }

  // Bytes of fragments the controller has placed on each node.
  std::map<uint64_t, uint64_t> AllocatedByNode() const;

 private:
  Result<uint64_t> NextId(const std::string& key, uint64_t* counter);
  Status Write(ctlplane::Op op);
  // Reads meta/cluster_id, or makes it with the first region id.
  Status LoadClusterId();
  Result<std::vector<ctlplane::KeyValue>> List(const std::string& what);

  ctlplane::Store* store_;
  const std::string prefix_;
  std::optional<ctlplane::Compare> fence_;
  bool fenced_out_ = false;
  std::map<uint64_t, NodeRecord> nodes_;
  std::map<std::string, RegionRecord> regions_;
  uint64_t next_node_id_ = 1;
  uint64_t next_region_id_ = 1;
  uint64_t region_generation_ = 0;
  uint64_t cluster_id_ = 0;
  StoreHealth health_;
};

}  // namespace tessera::controller
