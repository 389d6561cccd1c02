// Monotonic time in nanoseconds, for latency measurement and deadlines.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <ctime>

namespace tessera {

inline uint64_t NowNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace tessera
