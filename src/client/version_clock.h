// VersionClock: the version a page write stores. Memory nodes keep the
// newest version of each slot, so versions must grow for each writer and
// order different writers' writes the same way on every node: a version is
// wall-clock microseconds (made strictly increasing per client) with a
// 12-bit random client nonce below them, so two clients' writes to one page
// differ even in the same microsecond (unless their nonces collide: 1 in
// 4096 for writes in the same microsecond).
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace tessera::client {

class VersionClock {
 public:
  VersionClock() : nonce_(std::random_device{}() & 0xFFF) {}

  uint64_t Next() {
    uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
    uint64_t last = last_.load(std::memory_order_relaxed);
    uint64_t next;
    do {
      next = now > last ? now : last + 1;
    } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));
    return next << 12 | nonce_;
  }

 private:
  const uint64_t nonce_;
  std::atomic<uint64_t> last_{0};
};

}  // namespace tessera::client
