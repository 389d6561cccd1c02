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

}  // namespace tessera::controller
