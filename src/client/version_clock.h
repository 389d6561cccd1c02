// VersionClock: the versions a client's page writes carry — a hybrid logical
// clock. Memory nodes keep the newest version of each slot, so versions must
// grow for each writer and order different writers' writes the same way on
// every node. A version is wall-clock microseconds joined with the largest
// version this client has seen in any reply (Observe), made strictly
// increasing, with a 12-bit random client nonce below (proto/c2m.h has the
// layout), so two clients' writes to one page differ even in the same
// microsecond (unless their nonces collide: 1 in 4096).
//
// Why the join: clocks disagree. A client whose clock is behind another's
// would write versions older than what the other already stored, and those
// writes would not land. A memory node says so (the slot's version comes back
// as "superseded"), the client observes it, and its next version — the retry
// of that write — is above it. From then on the client runs no slower than
// the clocks it has seen, so it pays such a retry only once per clock it
// trails, not once per write.
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

#include "proto/c2m.h"

namespace tessera::client {

class VersionClock {
 public:
  // `now_us`: the wall clock in microseconds (tests pass a fake one).
  explicit VersionClock(std::function<uint64_t()> now_us = SystemMicros)
      : now_us_(std::move(now_us)), nonce_(std::random_device{}() & kNonceMask) {}

  uint64_t Next() {
    const uint64_t now = now_us_();
    uint64_t last = last_.load(std::memory_order_relaxed);
    uint64_t next;
    do {
      next = now > last ? now : last + 1;
    } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));
    return next << proto::c2m::kVersionNonceBits | nonce_;
  }

  // A version some node holds: every later Next() is above it.
  void Observe(uint64_t version) {
    const uint64_t at = proto::c2m::VersionMicros(version);
    uint64_t last = last_.load(std::memory_order_relaxed);
    while (at > last && !last_.compare_exchange_weak(last, at, std::memory_order_relaxed)) {
    }
  }

  static uint64_t SystemMicros() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }

 private:
  static constexpr uint64_t kNonceMask = (uint64_t{1} << proto::c2m::kVersionNonceBits) - 1;
  const std::function<uint64_t()> now_us_;
  const uint64_t nonce_;
  std::atomic<uint64_t> last_{0};  // microseconds of the last version made or seen
};

}  // namespace tessera::client
