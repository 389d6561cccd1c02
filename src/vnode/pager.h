// Pager: a range of memory whose pages live in the pool, served on demand
// through userfaultfd — the vNode's paging pipeline (LegoOS's ExCache and
// its fault path, in user space).
//
// Serve() starts one thread that serves a space (space.h): the pager's own
// process (Start() maps one there) or a program's, from outside (agent.h). It reads fault events, fills never-written pages locally
// (no round trip), fetches the others through the IoQueue, keeps local memory
// under the budget (evictor.h) and reads ahead (prefetcher.h). One thread
// does it all so that a fault costs no hand-off between threads: on this
// class of machine a cross-core wake-up is ~40 us, a round trip to a memory
// node ~15-55 us. While it waits for replies it also waits on the
// userfaultfd (IoQueue::WakeOnReadable).
//
// The thread never touches the managed range with loads or stores and never
// allocates from it; the program's threads only fault. If it meets an error
// it cannot serve past (the pool lost a page, the kernel refused an ioctl),
// the faulting threads could only hang: it has the space say why and stop
// the program, as a machine check would (Space::Fail). When the program is
// gone it lets its I/O finish and stops: finished().
//
// Ownership: owns the range, the thread, the queue and every stage.
// Thread-safety: Stats() from any thread; Stop()/destruction from one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"
#include "tessera/client.h"
#include "vnode/counters.h"
#include "vnode/page_table.h"
#include "vnode/space.h"

namespace tessera::vnode {

// A child the program forked without exec (UFFD_EVENT_FORK): its space and
// its page table. The pager has settled every page that is neither resident
// nor zeros into the pool, and writes nothing there until the handler
// returns: the handler copies the pool's pages for the child then
// (Client::CloneRegion) and serves it.
struct ForkedChild {
  std::unique_ptr<Space> space;
  PageTable table;
};
using ForkHandler = std::function<Status(ForkedChild)>;

struct PagerOptions {
  uint64_t cache_bytes = 256ull << 20;
  std::string policy = "clock";  // eviction_policy.h
  bool prefetch = true;
  uint32_t max_fetches = 256;    // reads in flight at most
  // Prefetches in flight at most: a demand read queues behind them.
  uint32_t max_prefetches = 32;
  // Busy-poll the userfaultfd this long before sleeping (0: never): a
  // sleeping pager thread costs each fault a cross-core wake-up (~40 us
  // here). Dropped when more threads are runnable than there are cores.
  uint32_t spin_us = 50;
  // A write fault on a never-written page fills this many never-written
  // pages around it (an aligned block) in one call: a heap grows through
  // fresh pages one after another.
  uint32_t zero_fault_around = 16;
  // Share of the cache that evicted pages spend staged (still local) before
  // they are written back or dropped: the window in which a touch counts as
  // "still in use". Larger: better recency information, more local faults.
  double inactive_fraction = 0.125;
  size_t page_size = 4096;
  // Runs first on the pager's thread (the preload shim marks the thread so
  // that its allocations never come from the range it serves).
  void (*on_thread_start)() = nullptr;
  // Where to count (counters.h); null: the pager's own.
  PagerCounters* counters = nullptr;
  // Serves the children the program forks; null: a fork is an error.
  ForkHandler on_fork;
  // True while a write to the pool would cost more than it saves (a forked
  // child still reads the program's pages: lazy_clone.h): pages are then
  // evicted only for faults that wait for room, not ahead of them. Called on
  // the pager's thread; null: never.
  std::function<bool()> defer_writes;
};

struct PagerStats {
  uint64_t faults = 0;
  uint64_t zero_fills = 0;
  uint64_t remote_faults = 0;
  uint64_t rescues = 0;
  uint64_t waits = 0;
  uint64_t prefetches = 0;
  uint64_t prefetch_hits = 0;
  // A sample of prefetched pages (prefetcher.h): those used, those not.
  uint64_t probes_touched = 0;
  uint64_t probes_untouched = 0;
  uint64_t pages_read = 0;
  uint64_t pages_written = 0;
  uint64_t pages_released = 0;
  uint64_t evictions = 0;
  uint64_t eviction_moves = 0;
  uint64_t clean_drops = 0;
  uint64_t io_errors = 0;
  uint64_t used_bytes = 0;
  uint64_t peak_used_bytes = 0;
  uint64_t fault_p50_ns = 0;  // remote faults: event read -> page installed
  uint64_t fault_p99_ns = 0;
};

class PagerImpl;

// Staging blocks a space needs for a pager with these options.
uint32_t StagingBlocksFor(const PagerOptions& options);

class Pager {
 public:
  // Serves `pages` pages mapped in this process. `queue` reads and writes the
  // pool's pages [0, pages).
  static Result<std::unique_ptr<Pager>> Start(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                              uint64_t pages);
  // Serves `space`, whose range is pages [0, layout().pages) of the pool.
  static Result<std::unique_ptr<Pager>> Serve(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                              std::unique_ptr<Space> space);
  // Serves a forked child, whose pool pages `queue` reaches. A space that
  // cannot evict (space.h) is served without a cache limit.
  static Result<std::unique_ptr<Pager>> ServeFork(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                                  ForkedChild child);
  // Stops serving: the range must no longer be in use.
  ~Pager();

  void* base() const;
  size_t bytes() const;
  PagerStats Stats() const;
  // The program is gone (or failed) and the I/O in flight is over.
  bool finished() const;

 private:
  explicit Pager(std::unique_ptr<PagerImpl> impl);
  std::unique_ptr<PagerImpl> impl_;
};

}  // namespace tessera::vnode
