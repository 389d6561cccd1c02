// Placement: which memory nodes get the fragments of a new region's stripes,
// or a replacement for a lost fragment.
//
// The fragments of one stripe go to distinct nodes — on distinct failure
// domains whenever there are enough — so that losing a node (or a rack)
// costs a stripe at most one fragment per node. Across stripes, nodes are
// chosen in proportion to their free space and interleaved rather than in runs
// (smooth weighted round-robin, as nginx balances upstreams), so consecutive
// stripes land on different nodes, batches of I/O spread over all of them and
// a fuller node receives less. A node never receives more than it has free.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera::controller {

struct NodeSlot {
  uint64_t id = 0;
  uint64_t free_bytes = 0;
  std::string domain;  // failure domain label; empty: the node is its own domain
};

// The failure domain a node stands for: its label, or the node alone.
std::string FailureDomain(uint64_t node_id, const std::string& label);

// Places `stripes` stripes of `width` fragments of `fragment_bytes` each: the
// fragments of one stripe go to `width` distinct nodes, and to distinct
// failure domains whenever there are at least `width` domains with room.
// Nodes are chosen by the same smooth weighted round-robin as PlaceFragments.
// Returns stripes * width node ids, stripe by stripe, or OutOfCapacity /
// Unavailable (too few nodes for the width) with the numbers.
// `nodes` are the live nodes.
Result<std::vector<uint64_t>> PlaceStripes(const std::vector<NodeSlot>& nodes, int width, uint64_t stripes,
                                           uint64_t fragment_bytes);

}  // namespace tessera::controller
