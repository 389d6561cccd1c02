// WriteTracker: this client's unfinished writes to one region, for the
// write-hole protocol (proto/c2m.h). It gives
//   - the writer id every write and resolve of the region carries;
//   - done_below, the watermark sent with each write: every version below it
//     belongs to a write that every node it went to has answered, so the
//     nodes may drop the undo copies those writes made;
//   - one write per page at a time: a second write of a page waits until the
//     first is answered everywhere. The nodes rely on it — a writer's next
//     write to a slot completes its previous one there.
// A version is reserved when its write is submitted (so the watermark cannot
// pass a write still waiting for its page) and released when the write
// retires, successful or not.
//
// Thread-safety: thread-safe (the IoQueues of a region share one; reply
// callbacks release on any thread). Never calls out while holding its lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <unordered_set>

namespace tessera::client {

class WriteTracker {
 public:
  explicit WriteTracker(uint64_t writer) : writer_(writer) {}

  uint64_t writer() const { return writer_; }
  void Reserve(uint64_t version);
  // Takes `page` for a write; false if a write of it is in flight.
  bool TryTake(uint64_t page);
  // The write of `version` to `page` (taken, if `taken`) is over.
  void Release(uint64_t page, uint64_t version, bool taken);
  uint64_t done_below() const;
  // Bumped by every Release: a waiter for a page polls it without a lock.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Whether any write has begun since the last call (the region's handle
  // then tells the nodes the final watermark when it closes).
  bool TakeWroteSince();

 private:
  const uint64_t writer_;
  mutable std::mutex mu_;
  std::set<uint64_t> versions_;         // reserved, not released; guarded by mu_
  std::unordered_set<uint64_t> pages_;  // taken; guarded by mu_
  uint64_t highest_ = 0;                // guarded by mu_
  bool wrote_ = false;                  // guarded by mu_
  std::atomic<uint64_t> generation_{0};
};

}  // namespace tessera::client
