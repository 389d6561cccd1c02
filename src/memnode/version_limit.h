// VersionLimit: how far into the future a page write's version may reach.
// A version is its writer's clock reading (proto/c2m.h), and the newest
// version of a slot wins on every node, so a writer whose clock runs ahead —
// or a hostile one sending 2^64-1 — would pin a page: every later write would
// be superseded. A memory node therefore refuses, with a ClockSkew error that
// names both clocks, any version more than max_ahead_us past its own clock.
// Clocks that agree within that bound (NTP keeps them within milliseconds)
// never meet the limit; clients catch up with each other through the
// versions they see (client/version_clock.h).
//
// Thread-safety: a value type; Admit is const.
#pragma once

#include <cstdint>
#include <functional>

#include "common/status.h"

namespace tessera::memnode {

struct VersionLimit {
  uint64_t max_ahead_us = 5'000'000;
  std::function<uint64_t()> now_us;  // empty: the wall clock (CLOCK_REALTIME)

  // Ok, or ClockSkew for a version from too far in the future.
  Status Admit(uint64_t version) const;
};

}  // namespace tessera::memnode
