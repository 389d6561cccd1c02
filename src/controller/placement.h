// Placement: which memory node gets each fragment of a new region.
//
// Fragments go to nodes in proportion to their free space, interleaved rather
// than in runs (smooth weighted round-robin, as nginx balances upstreams), so
// that consecutive pages land on different nodes and a batch of I/O spreads
// over all of them, and a fuller node receives less. A node never receives
// more than it has free.
//
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera::controller {

struct NodeSpace {
  uint64_t id = 0;
  uint64_t free_bytes = 0;
};

// Returns the node id for each fragment, or OutOfCapacity (with the numbers)
// if the fragments do not fit.
Result<std::vector<uint64_t>> PlaceFragments(const std::vector<NodeSpace>& nodes,
                                             const std::vector<uint64_t>& fragment_bytes);


struct NodeSlot {
  uint64_t id = 0;
  uint64_t free_bytes = 0;
  std::string domain;  // failure domain label; empty: the node is its own domain
};

// Places `stripes` stripes of `width` fragments of `fragment_bytes` each: the
// fragments of one stripe go to `width` distinct nodes, and to distinct
// failure domains whenever there are at least `width` domains with room.
// Nodes are chosen by the same smooth weighted round-robin as PlaceFragments.
// Returns stripes * width node ids, stripe by stripe, or OutOfCapacity /
// Unavailable (too few nodes for the width) with the numbers.
Result<std::vector<uint64_t>> PlaceStripes(const std::vector<NodeSlot>& nodes, int width, uint64_t stripes,
                                           uint64_t fragment_bytes);

}  // namespace tessera::controller
