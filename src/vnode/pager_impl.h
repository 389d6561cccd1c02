// PagerImpl: the pager's insides (pager.h), shared by the files that
// implement it: pager.cc (the loop: events, faults, zero-fill, prefetch) and
// pager_serve.cc (how a pager comes to serve a space — a fresh one, or a
// forked child's — and the fork that makes one from another).
//
// Ownership: owns the space, the page table, every stage and the queue.
// Thread-safety: its thread only, but for Stats(), finished() and the
// destructor (pager.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "net/wait_policy.h"
#include "vnode/context.h"
#include "vnode/evictor.h"
#include "vnode/fetcher.h"
#include "vnode/pager.h"
#include "vnode/prefetcher.h"

namespace tessera::vnode {

constexpr uint64_t kUnlimited = uint64_t{1} << 60;  // pages: a budget never reached

class PagerImpl {
 public:
  PagerImpl(const PagerOptions& o, std::unique_ptr<Space> space, PageTable table,
            std::unique_ptr<EvictionPolicy> policy, std::unique_ptr<IoQueue> queue);
  ~PagerImpl();

  void* base() const { return base_; }
  size_t bytes() const { return pages_ * options_.page_size; }
  PagerStats Stats() const;
  void StartThread();
  // Counts and admits the pages a forked child starts with.
  void AdoptResident();
  bool finished() const { return finished_.load(); }

 private:
  struct Parked {
    uint64_t page;
    bool write;
    uint64_t since_ns;
  };
  static EvictorOptions EvictionShape(const PagerOptions& o, uint64_t budget);
  void Loop();
  // The program is gone or failed: lets the I/O in flight finish, so that no
  // write of this run lands after the pager is gone.
  void Quiesce();
  Status Step();
  Status TakeCompletions();
  Status OnEvent(const UffdEvent& e, uint64_t now);
  // Reads the userfaultfd's events into `into`, counting forks.
  Status ReadEvents(std::vector<UffdEvent>* into);
  Status OnFork(UniqueFd child_uffd);
  // Until every page is resident, zeros or in the pool (Evictor::Settle).
  Status SettleForFork();
  // Reaps the queue's completions (waiting up to timeout_ms for `min`).
  Status Reap(size_t min, int timeout_ms);
  // Serves a fault on `page`; false when it must wait for room.
  Result<bool> OnFault(uint64_t page, bool write, uint64_t now);
  Result<bool> ZeroFill(uint64_t page, bool write);
  Status Prefetch();
  Status ProbeTouched(uint64_t page);
  Status ServeParked();
  Status WaitForWork(bool busy);
  // Spins, then sleeps, until the userfaultfd is readable or timeout_ms;
  // sets woke_ready_.
  Status WaitForFault(int timeout_ms);

  const PagerOptions options_;
  const std::unique_ptr<Space> space_;  // first: outlives everything that points into it
  uint8_t* const base_;
  const uint64_t pages_;
  PageTable table_;
  Staging staging_;
  std::unique_ptr<EvictionPolicy> policy_;
  PagerCounters own_stats_;
  PagerCounters& stats_;
  PagingContext ctx_;
  const uint64_t cache_pages_;  // the budget once the space can evict
  std::vector<uint8_t> zeros_;  // zero_fault_around pages of zeros
  uint64_t evictor_headroom_ = 0;
  Fetcher fetcher_;
  Evictor evictor_;
  std::optional<Prefetcher> prefetcher_;
  PrefetchPlan plan_;
  std::deque<Parked> parked_;
  std::vector<UffdEvent> events_;
  // Read while a fork settled, handled at the next step: reading them is what
  // lets the helper's madvise (a staging drop the settling waits for) return.
  std::vector<UffdEvent> later_;
  uint32_t unsettled_forks_ = 0;  // fork events read, their settle not done yet
  std::vector<SpaceCompletion> completions_;
  std::vector<Completion> done_;
  bool woke_ready_ = false;  // the last wait ended because the space's descriptor was ready
  net::WaitPolicy wait_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
  // Last: destroyed first, so nothing in flight outlives the buffers above.
  std::unique_ptr<IoQueue> queue_;
};

}  // namespace tessera::vnode
