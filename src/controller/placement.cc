#include "controller/placement.h"

#include <algorithm>
#include <string>

#include "common/units.h"

namespace tessera::controller {

std::string FailureDomain(uint64_t node_id, const std::string& label) {
  return label.empty() ? "node:" + std::to_string(node_id) : label;
}

Result<std::vector<uint64_t>> PlaceStripes(const std::vector<NodeSlot>& nodes, int width, uint64_t stripes,
                                           uint64_t fragment_bytes) {
  if (width < 1) return InvalidArgument("stripe width " + std::to_string(width));
  if (static_cast<int>(nodes.size()) < width) {
    return Unavailable("a stripe needs " + std::to_string(width) + " distinct memory nodes; " +
                       std::to_string(nodes.size()) + " are live");
  }
  std::vector<uint64_t> left(nodes.size());
  std::vector<double> current(nodes.size(), 0.0);
  uint64_t free = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    left[i] = nodes[i].free_bytes;
    free += nodes[i].free_bytes;
  }
  const uint64_t need = stripes * static_cast<uint64_t>(width) * fragment_bytes;
  if (need > free) {
    return OutOfCapacity("the region needs " + FormatSize(need) + "; the cluster has " + FormatSize(free) +
                         " free on " + std::to_string(nodes.size()) + " live memory node(s)");
  }
  const double total = static_cast<double>(free);
  auto domain_of = [&](size_t i) { return FailureDomain(nodes[i].id, nodes[i].domain); };
  std::vector<uint64_t> placed;
  placed.reserve(stripes * static_cast<uint64_t>(width));
  for (uint64_t s = 0; s < stripes; ++s) {
    for (size_t i = 0; i < nodes.size(); ++i) current[i] += static_cast<double>(nodes[i].free_bytes);
    std::vector<bool> used(nodes.size(), false);
    std::vector<std::string> domains;
    // Prefer a fresh domain; fall back to any unused node when domains run out.
    for (int f = 0; f < width; ++f) {
      int best = -1;
      bool best_fresh = false;
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (used[i] || left[i] < fragment_bytes) continue;
        bool fresh = std::find(domains.begin(), domains.end(), domain_of(i)) == domains.end();
        if (best < 0 || (fresh && !best_fresh) || (fresh == best_fresh && current[i] > current[best])) {
          best = static_cast<int>(i);
          best_fresh = fresh;
        }
      }
      if (best < 0) {
        return OutOfCapacity("stripe " + std::to_string(s) + " of " + std::to_string(stripes) + " found only " +
                             std::to_string(f) + " of " + std::to_string(width) + " distinct nodes with " +
                             FormatSize(fragment_bytes) + " free");
      }
      used[best] = true;
      domains.push_back(domain_of(best));
      current[best] -= total / width;
      left[best] -= fragment_bytes;
      placed.push_back(nodes[best].id);
    }
  }
  return placed;
}

}  // namespace tessera::controller
