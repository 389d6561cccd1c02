#include "controller/placement.h"

#include <numeric>

#include "common/units.h"

namespace tessera::controller {

Result<std::vector<uint64_t>> PlaceFragments(const std::vector<NodeSpace>& nodes,
                                             const std::vector<uint64_t>& fragment_bytes) {
  uint64_t need = std::accumulate(fragment_bytes.begin(), fragment_bytes.end(), uint64_t{0});
  uint64_t free = 0;
  for (const NodeSpace& n : nodes) free += n.free_bytes;
  auto out_of_capacity = [&] {
    return OutOfCapacity("the region needs " + FormatSize(need) + "; the cluster has " + FormatSize(free) +
                         " free on " + std::to_string(nodes.size()) + " live memory node(s)");
  };
  if (need > free) return out_of_capacity();

  std::vector<uint64_t> left(nodes.size());
  std::vector<double> current(nodes.size(), 0.0);
  for (size_t i = 0; i < nodes.size(); ++i) left[i] = nodes[i].free_bytes;
  const double total = static_cast<double>(free);

  std::vector<uint64_t> placed;
  placed.reserve(fragment_bytes.size());
  for (uint64_t bytes : fragment_bytes) {
    int best = -1;
    for (size_t i = 0; i < nodes.size(); ++i) {
      current[i] += static_cast<double>(nodes[i].free_bytes);
      if (left[i] >= bytes && (best < 0 || current[i] > current[best])) best = static_cast<int>(i);
    }
    // Free space can be fragmented across nodes even when the sum suffices.
    if (best < 0) return out_of_capacity();
    current[best] -= total;
    left[best] -= bytes;
    placed.push_back(nodes[best].id);
  }
  return placed;
}

}  // namespace tessera::controller
