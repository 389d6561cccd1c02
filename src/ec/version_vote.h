// The read rule of a redundant page, shared by the client's reads and
// resolver and the controller's rebuild: of the versions a page's shares
// offer (each share its current version, and its previous one when asked
// for — see proto/c2m.h on the write hole), take the newest that at least k
// distinct shares offer, since any k shares of one version make the page.
//
// Thread-safety: pure function.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <span>

namespace tessera::ec {

struct VersionOffer {
  int share = 0;
  uint64_t version = 0;
};

struct Vote {
  uint64_t version = 0;
  uint32_t shares = 0;  // bit j: share j offers it
};

inline std::optional<Vote> NewestWithQuorum(std::span<const VersionOffer> offers, int k) {
  std::optional<Vote> best;
  for (const VersionOffer& o : offers) {
    if (best && o.version <= best->version) continue;
    uint32_t mask = 0;
    for (const VersionOffer& p : offers) {
      if (p.version == o.version) mask |= 1u << p.share;
    }
    if (std::popcount(mask) >= k) best = Vote{o.version, mask};
  }
  return best;
}

}  // namespace tessera::ec
