// Fetcher: reads pages from the pool into its own buffers and installs them
// into the managed range (UFFDIO_COPY, which wakes every thread waiting on the
// page). The buffers are the pager's, never the managed range: the pager's
// thread must not fault on the memory it serves.
//
// A read reserves a page of the cache budget when it starts, so an arriving
// page always has room. A failed read is retried (the client library already
// went degraded and retried before failing it); a page the pool has lost
// (DataLoss) cannot be served at all, and the program is stopped with a
// message saying which page and why, as a machine check would.
//
// Ownership: owns the buffers; borrows the context.
// Thread-safety: none; the pager's thread owns it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "vnode/context.h"

namespace tessera::vnode {

class Fetcher {
 public:
  // At most `max_in_flight` reads, of which at most `max_prefetch` prefetches.
  Fetcher(PagingContext* ctx, uint32_t max_in_flight, uint32_t max_prefetch);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  bool CanStart() const { return !free_.empty() && ctx_->HasRoom(); }
  // Prefetches are capped: a demand read sent after them waits behind them
  // on the wire and at the memory node.
  bool CanPrefetch() const { return prefetching_ < max_prefetch_ && !free_.empty() && ctx_->HasRoom(); }
  // Starts reading kRemote `page` (now kFetching). `demand_ns`: when the
  // fault that wants it was read (0 for a prefetch). `probe`: install it
  // staged (prefetcher.h). Needs CanStart().
  Status Start(uint64_t page, uint64_t demand_ns, bool probe = false);
  // A fault arrived for kFetching `page`. True if it was a probe (which is
  // now an ordinary page).
  bool Join(uint64_t page, uint64_t now_ns);
  // The read tagged `tag` completed.
  Status OnDone(uint64_t tag, const Status& status);
  // Installs pages that arrived while the address space was changing.
  Status RetryInstalls();

 private:
  struct Buffer {
    uint8_t* data = nullptr;
    uint64_t page = 0;
    uint64_t demand_ns = 0;  // first fault that waits, 0 if none yet
    bool prefetch = false;   // started by the prefetcher
  };
  Status Submit(uint32_t index);
  // Installs buffer `index`'s page, or queues it while the address space changes.
  Status Install(uint32_t index);
  // Installs a probe into a staging slot; false if no slot is free.
  Result<bool> InstallProbe(uint32_t index);
  void Finish(uint32_t index);

  PagingContext* ctx_;
  uint8_t* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<Buffer> buffers_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> to_install_;
  const uint32_t max_prefetch_;
  uint32_t prefetching_ = 0;  // prefetches in flight
};

}  // namespace tessera::vnode
