// Fetcher: reads pages from the pool into its own buffers and installs them
// into the managed range (UFFDIO_COPY, which wakes every thread waiting on the
// page). The buffers are the pager's, never the managed range: the pager's
// thread must not fault on the memory it serves.
//
// A prefetch of consecutive pages is one read into adjacent buffers, and its
// pages go in with one UFFDIO_COPY per run of them still wanted: a call per
// page cost about twice as much per page (2.1-2.6 us alone against 1.1 us in
// runs of 16, measured here), and the calls were a third of the pager's time
// on a sequential scan.
//
// A read reserves a page of the cache budget per page when it starts, so an
// arriving page always has room. A failed read is retried (the client library
// already went degraded and retried before failing it); a page the pool has
// lost (DataLoss) cannot be served at all, and the program is stopped with a
// message saying which page and why, as a machine check would.
//
// Ownership: owns the buffers; borrows the context.
// Thread-safety: none; the pager's thread owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/result.h"
#include "vnode/context.h"

namespace tessera::vnode {

class Fetcher {
 public:
  // At most `max_in_flight` pages being read, of which at most
  // `max_prefetch` prefetched.
  Fetcher(PagingContext* ctx, uint32_t max_in_flight, uint32_t max_prefetch);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  bool CanStart() const { return free_count_ > 0 && ctx_->HasRoom(); }
  // Pages a prefetch may read now. Prefetches are capped: a demand read sent
  // after them waits behind them on the wire and at the memory node.
  uint32_t PrefetchRoom() const;
  // Starts reading kRemote `page` (now kFetching) for the fault read at
  // `demand_ns`. Needs CanStart().
  Status Start(uint64_t page, uint64_t demand_ns);
  // Starts prefetching kRemote pages [first, first + count) as one read, or
  // the first of them, as many as adjacent free buffers allow (at least
  // one): those are kFetching now, the rest still kRemote. `probe`: a page
  // among them to install staged (prefetcher.h). Needs
  // 0 < count <= PrefetchRoom().
  Status StartPrefetch(uint64_t first, uint32_t count, std::optional<uint64_t> probe);
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
    uint32_t run = 0;        // on a read's first buffer: the pages it reads
    bool prefetch = false;   // started by the prefetcher
    bool free = true;
  };
  // The first of `*count` adjacent free buffers, at most `want` of them and
  // as many as there are together: the lowest run of `want`, else the longest.
  uint32_t TakeRun(uint32_t want, uint32_t* count);
  // Marks `page` kFetching into buffer `index`.
  void Claim(uint32_t index, uint64_t page, uint64_t demand_ns, bool probe);
  Status Submit(uint32_t index);
  // Whether buffer `index` still holds the read of its page's current state.
  bool Current(uint32_t index) const;
  // Whether any of buffers [first, first + count) is Current.
  bool AnyCurrent(uint32_t first, uint32_t count) const;
  // Current, and to be mapped (not a probe to stage).
  bool Ordinary(uint32_t index) const;
  // Installs the pages of the read at buffer `first`: adjacent ones that are
  // still wanted in one call, probes staged.
  Status InstallRun(uint32_t first, uint32_t count);
  // Installs buffers [index, index + count), adjacent current ordinary pages;
  // whatever cannot go in now is queued for RetryInstalls.
  Status CopyIn(uint32_t index, uint32_t count);
  // Marks buffer `index`'s page installed.
  void Installed(uint32_t index);
  // Installs buffer `index`'s page, or queues it while the address space changes.
  Status Install(uint32_t index);
  // Installs a probe into a staging slot; false if no slot is free.
  Result<bool> InstallProbe(uint32_t index);
  void Finish(uint32_t index);

  PagingContext* ctx_;
  uint8_t* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<Buffer> buffers_;
  uint32_t free_count_ = 0;
  std::vector<uint32_t> to_install_;
  const uint32_t max_prefetch_;
  uint32_t prefetching_ = 0;  // pages being prefetched
};

}  // namespace tessera::vnode
