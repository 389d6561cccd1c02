// ClusterState: the controller's picture of the cluster — memory nodes and
// regions — and its persistence in a MetaStore. Durable fields are written
// through on every change; liveness and reported usage are soft state
// rebuilt from heartbeats after a restart.
//
// Keys: "node/<id>", "region/<name>", "meta/next_node_id", "meta/next_region_id";
// values are JSON (nlohmann).
//
// Thread-safety: not thread-safe; owned by the controller's server thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "controller/meta_store.h"
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
  explicit ClusterState(MetaStore* store) : store_(store) {}

  // Reads every record; nodes start with last_heartbeat_ns = now_ns so they
  // get one heartbeat timeout of grace after a controller restart.
  Status Load(uint64_t now_ns);

  std::map<uint64_t, NodeRecord>& nodes() { return nodes_; }
  const std::map<std::string, RegionRecord>& regions() const { return regions_; }

  Result<uint64_t> NewNodeId() { return NextId("meta/next_node_id", &next_node_id_); }
  Result<uint64_t> NewRegionId() { return NextId("meta/next_region_id", &next_region_id_); }

  Status PutNode(const NodeRecord& n);
  Status PutRegion(const RegionRecord& r);
  Status DeleteRegion(const std::string& name);

  // Bytes of fragments the controller has placed on each node.
  std::map<uint64_t, uint64_t> AllocatedByNode() const;

 private:
  Result<uint64_t> NextId(const std::string& key, uint64_t* counter);

  MetaStore* store_;
  std::map<uint64_t, NodeRecord> nodes_;
  std::map<std::string, RegionRecord> regions_;
  uint64_t next_node_id_ = 1;
  uint64_t next_region_id_ = 1;
};

}  // namespace tessera::controller
