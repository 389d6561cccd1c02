#include "vnode/pager_impl.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "common/check.h"
#include "common/clock.h"

namespace tessera::vnode {

EvictorOptions PagerImpl::EvictionShape(const PagerOptions& o, uint64_t budget) {
  EvictorOptions e;
  e.batch = static_cast<uint32_t>(std::clamp<uint64_t>(budget / 8, 1, Staging::kBlockSlots));
  e.headroom = e.batch;
  e.inactive_target = std::max<uint64_t>(static_cast<uint64_t>(static_cast<double>(budget) * o.inactive_fraction),
                                         e.batch);
  return e;
}

PagerImpl::PagerImpl(const PagerOptions& o, std::unique_ptr<Space> space, PageTable table,
                     std::unique_ptr<EvictionPolicy> policy, std::unique_ptr<IoQueue> queue)
    : options_(o),
      space_(std::move(space)),
      base_(space_->layout().base),
      pages_(space_->layout().pages),
      table_(std::move(table)),
      staging_(space_.get()),
      policy_(std::move(policy)),
      stats_(o.counters != nullptr ? *o.counters : own_stats_),
      ctx_{.base = base_,
           .pages = pages_,
           .page_size = o.page_size,
           .zero_crc = ZeroPageCrc(o.page_size),
           .space = space_.get(),
           .uffd = &space_->uffd(),
           .staging_uffd = &space_->staging_uffd(),
           .table = &table_,
           .staging = &staging_,
           .policy = policy_.get(),
           .queue = queue.get(),
           .stats = &stats_,
           .budget = space_->can_evict() ? o.cache_bytes / o.page_size : kUnlimited},
      cache_pages_(o.cache_bytes / o.page_size),
      zeros_(o.page_size * std::max<uint32_t>(o.zero_fault_around, 1), 0),
      evictor_headroom_(EvictionShape(o, cache_pages_).headroom),
      fetcher_(&ctx_, o.max_fetches, std::min(o.max_prefetches, o.max_fetches)),
      evictor_(&ctx_, EvictionShape(o, cache_pages_),
               [this](uint64_t page) {
                 stats_.probes_untouched.fetch_add(1, std::memory_order_relaxed);
                 if (prefetcher_) prefetcher_->OnProbeUntouched(page);
               }),
      wait_(net::WaitOptions{.spin_us = o.spin_us}),
      queue_(std::move(queue)) {
  // Windows up to an eighth of the cache, and no more than the prefetches in flight.
  if (o.prefetch) {
    prefetcher_.emplace(pages_, static_cast<uint32_t>(std::clamp<uint64_t>(cache_pages_ / 8, 4, o.max_prefetches)));
  }
}

PagerImpl::~PagerImpl() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void PagerImpl::StartThread() {
  // The pager's thread takes no signals: a handler that touched the managed
  // range there would fault on the thread that serves the faults.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([this] {
    if (options_.on_thread_start != nullptr) options_.on_thread_start();
    Loop();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_setname_np(thread_.native_handle(), "tessera-pager");
}

void PagerImpl::Loop() {
  while (!stop_.load(std::memory_order_relaxed)) {
    Status s = Step();
    if (s.ok()) continue;
    if (!space_->Gone()) space_->Fail(s);
    break;
  }
  Quiesce();
  finished_.store(true);
}

void PagerImpl::Quiesce() {
  constexpr int kMaxWaits = 30;  // seconds: a memory node that went silent is declared dead sooner
  for (int i = 0; i < kMaxWaits && queue_->outstanding() > 0; ++i) {
    done_.clear();
    Result<size_t> n = queue_->Reap(&done_, queue_->outstanding(), 1000);
    if (!n.ok() && n.status().code() != Code::kTimedOut) return;
  }
}

Status PagerImpl::Step() {
  events_.clear();
  events_.swap(later_);
  TS_RETURN_IF_ERROR(TakeCompletions());
  TS_RETURN_IF_ERROR(ReadEvents(&events_));
  if (std::exchange(woke_ready_, false) && events_.empty() && completions_.empty()) {
    stats_.quiet_wakes.fetch_add(1, std::memory_order_relaxed);
    TS_RETURN_IF_ERROR(space_->OnQuietWake());
  }
  uint64_t now = NowNanos();
  for (const UffdEvent& e : events_) TS_RETURN_IF_ERROR(OnEvent(e, now));
  if (unsettled_forks_ == 0) TS_RETURN_IF_ERROR(space_->ConfirmForks());
  TS_RETURN_IF_ERROR(fetcher_.RetryInstalls());
  if (!parked_.empty() || !options_.defer_writes || !options_.defer_writes()) TS_RETURN_IF_ERROR(evictor_.Run());
  TS_RETURN_IF_ERROR(ServeParked());
  TS_RETURN_IF_ERROR(evictor_.RetryFailed(now));
  return WaitForWork(!events_.empty());
}

Status PagerImpl::TakeCompletions() {
  completions_.clear();
  TS_RETURN_IF_ERROR(space_->TakeCompletions(&completions_));
  for (const SpaceCompletion& c : completions_) {
    if (c.kind == SpaceCompletion::Kind::kDrop) {
      TS_RETURN_IF_ERROR(staging_.OnDropped(c.token));
    } else {
      TS_RETURN_IF_ERROR(evictor_.OnMoved(c.token, c.move));
    }
  }
  if (!completions_.empty()) ctx_.NoteUsed();
  // A forked child that joined has a helper now: its cache has a limit again.
  if (ctx_.budget == kUnlimited && space_->can_evict()) ctx_.budget = cache_pages_;
  return Status::Ok();
}

Status PagerImpl::WaitForWork(bool busy) {
  constexpr int kIdleMs = 100;  // bounds how long Stop() waits
  if (queue_->outstanding() > 0) return Reap(busy ? 0 : 1, busy ? 0 : kIdleMs);
  if (busy) return Status::Ok();
  TS_RETURN_IF_ERROR(queue_->Flush());
  return WaitForFault(kIdleMs);
}

Status PagerImpl::Reap(size_t min, int timeout_ms) {
  done_.clear();
  Result<size_t> n = queue_->Reap(&done_, min, timeout_ms);
  if (!n.ok() && n.status().code() != Code::kTimedOut) return n.status().With("page I/O");
  for (const Completion& c : done_) {
    if (c.user_data & kTagRelease) {
      evictor_.OnReleased(c.user_data, c.status);
    } else if (c.user_data & kTagWrite) {
      TS_RETURN_IF_ERROR(evictor_.OnWriteDone(c.user_data, c.status));
    } else {
      TS_RETURN_IF_ERROR(fetcher_.OnDone(c.user_data, c.status));
    }
  }
  return Status::Ok();
}

Status PagerImpl::WaitForFault(int timeout_ms) {
  pollfd p{space_->wait_fd(), POLLIN, 0};
  // Without a spin budget, straight to the blocking poll: a poll(0) and a
  // yield first would be two more system calls per wait (~1 us each here).
  const uint64_t budget = wait_.SpinBudgetNanos();
  const uint64_t spin_until = NowNanos() + budget;
  while (budget > 0) {
    int n = poll(&p, 1, 0);
    woke_ready_ = n > 0;
    if (n != 0) return n > 0 || errno == EINTR ? Status::Ok() : Status::FromErrno(errno, "poll userfaultfd");
    if (NowNanos() >= spin_until) break;
    sched_yield();  // a faulting thread woken on this core runs now
  }
  const int n = poll(&p, 1, timeout_ms);
  if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll userfaultfd");
  woke_ready_ = n > 0;
  return Status::Ok();
}

Status PagerImpl::OnEvent(const UffdEvent& e, uint64_t now) {
  const uint64_t start = reinterpret_cast<uint64_t>(base_), end = start + bytes();
  switch (e.kind) {
    case UffdEvent::Kind::kFault: {
      stats_.faults.fetch_add(1, std::memory_order_relaxed);
      if (e.address < start || e.address >= end) {
        TS_ASSIGN_OR_RETURN(bool served, space_->ServeOutside(e.address));
        if (served) return Status::Ok();
        return Internal("a fault outside the managed range, at " + std::to_string(e.address) +
                        " (the program touched Tessera's staging area)");
      }
      uint64_t page = (e.address - start) / options_.page_size;
      if (!parked_.empty()) {
        parked_.push_back({page, e.write, now});  // keep arrival order
        return Status::Ok();
      }
      TS_ASSIGN_OR_RETURN(bool served, OnFault(page, e.write, now));
      if (!served) parked_.push_back({page, e.write, now});
      return Status::Ok();
    }
    case UffdEvent::Kind::kRemove:
    case UffdEvent::Kind::kUnmap: {
      uint64_t lo = std::max(e.address, start), hi = std::min(e.end, end);
      for (uint64_t a = lo; a < hi; a += options_.page_size) evictor_.Discard((a - start) / options_.page_size);
      return Status::Ok();
    }
    case UffdEvent::Kind::kFork:
      return OnFork(UniqueFd(e.fork_fd));
    case UffdEvent::Kind::kRemap:
      return Internal("unexpected userfaultfd event (remap is not enabled)");
  }
  return Status::Ok();
}

Result<bool> PagerImpl::OnFault(uint64_t page, bool write, uint64_t now) {
  PageEntry& e = table_[page];
  switch (e.state) {
    case PageState::kZero:
      if (!ctx_.HasRoom()) return false;
      return ZeroFill(page, write);
    case PageState::kRemote:
      if (!fetcher_.CanStart()) return false;
      TS_RETURN_IF_ERROR(fetcher_.Start(page, now));
      if (prefetcher_) {
        prefetcher_->OnMiss(page, &plan_);
        TS_RETURN_IF_ERROR(Prefetch());
      }
      return true;
    case PageState::kFetching:
      if (fetcher_.Join(page, now)) TS_RETURN_IF_ERROR(ProbeTouched(page));
      return true;
    case PageState::kResident: {
      // Served since this event was queued (the zero page then finds it
      // there and the thread is woken) — or the kernel dropped the page
      // itself, as it may after MADV_FREE, and zeros are its content.
      Status s = ctx_.uffd->ZeroPage(ctx_.Address(page), options_.page_size);
      if (s.ok()) e.crc = ctx_.zero_crc;
      if (s.code() == Code::kAlreadyExists) s = ctx_.uffd->Wake(ctx_.Address(page), options_.page_size);
      if (AddressSpaceChanging(s)) return false;
      TS_RETURN_IF_ERROR(s);
      return true;
    }
    case PageState::kStaged: {
      if (space_->bring_back_copies() && !ctx_.HasRoom()) return false;
      const bool probe = (e.flags & kProbe) != 0;
      TS_ASSIGN_OR_RETURN(bool served, evictor_.Rescue(page));
      if (served && probe) {
        table_[page].flags &= static_cast<uint8_t>(~kProbe);
        TS_RETURN_IF_ERROR(ProbeTouched(page));
      }
      return served;
    }
    case PageState::kWriteback:
      if (!ctx_.HasRoom()) return false;  // a copy takes a page
      return evictor_.Rescue(page);
    case PageState::kEvicting:
      return false;  // waits for the move's result
  }
  return true;
}

Result<bool> PagerImpl::ZeroFill(uint64_t page, bool write) {
  // A read maps the shared zero page (no memory); a write gets private
  // zeroed pages at once instead of a second, copy-on-write fault — for the
  // never-written pages after it too, while the cache has room: a growing
  // heap touches fresh pages one after another.
  uint64_t end = page + 1;
  if (write) {
    const uint64_t hi = std::min<uint64_t>(page + std::max<uint32_t>(options_.zero_fault_around, 1), pages_);
    const uint64_t room = ctx_.budget - std::min(ctx_.budget, ctx_.used() + evictor_headroom_);
    while (end < hi && end - page < room && table_[end].state == PageState::kZero) ++end;
  }
  // Counters move before the ioctl wakes the thread, so that it sees its own fault.
  stats_.zero_fills.fetch_add(1, std::memory_order_relaxed);
  void* addr = ctx_.Address(page);
  size_t copied = 0;
  Status s = write ? ctx_.uffd->Copy(addr, zeros_.data(), (end - page) * options_.page_size, &copied)
                   : ctx_.uffd->ZeroPage(addr, options_.page_size);
  if (s.ok() && !write) copied = options_.page_size;
  if (s.code() == Code::kAlreadyExists) {
    // A page after this one is still mapped (a discard the kernel has not
    // carried out yet): the pages before it are in; if none is, this page
    // itself is there and its thread only needs waking.
    s = copied > 0 ? Status::Ok() : ctx_.uffd->Wake(addr, options_.page_size);
  }
  if (!s.ok() || copied == 0) stats_.zero_fills.fetch_sub(1, std::memory_order_relaxed);
  if (AddressSpaceChanging(s)) return false;
  if (!s.ok()) return s.With("zero-fill page " + std::to_string(page));
  for (uint64_t p = page; p < page + copied / options_.page_size; ++p) {
    PageEntry& e = table_[p];
    e.state = PageState::kResident;
    e.crc = ctx_.zero_crc;
    e.flags = 0;
    ++ctx_.resident;
    policy_->Admit(table_, p, false);
  }
  ctx_.NoteUsed();
  return true;
}

Status PagerImpl::Prefetch() {
  const std::vector<uint64_t>& pages = plan_.pages;
  std::optional<uint64_t> probe;
  for (size_t i = 0; i < pages.size();) {
    if (table_[pages[i]].state != PageState::kRemote) {  // here already, or zeros
      ++i;
      continue;
    }
    const uint32_t room = fetcher_.PrefetchRoom();
    if (room == 0) break;
    // One read for the plan's next pages that are adjacent in memory, in
    // either direction (a stream may run downwards).
    size_t j = i + 1;
    const int64_t step = j < pages.size() && pages[j] + 1 == pages[i] ? -1 : 1;
    while (j < pages.size() && j - i < room && pages[j] == pages[j - 1] + step &&
           table_[pages[j]].state == PageState::kRemote) {
      ++j;
    }
    // The probe: the plan's, or the first page fetched after it. A space
    // that cannot evict has no staging for probes: its windows stay small.
    std::optional<uint64_t> run_probe;
    if (!probe && plan_.probe && j > *plan_.probe && space_->can_evict()) {
      run_probe = pages[std::max(i, *plan_.probe)];
    }
    const uint64_t lowest = step > 0 ? pages[i] : pages[j - 1];
    TS_RETURN_IF_ERROR(fetcher_.StartPrefetch(lowest, static_cast<uint32_t>(j - i), run_probe));
    if (run_probe && table_[*run_probe].state == PageState::kFetching) probe = run_probe;
    // Not advanced: the pages started are kFetching now and skipped; those
    // left (no adjacent buffers free for all) get a read of their own.
  }
  prefetcher_->ProbeChosen(probe);
  return Status::Ok();
}

Status PagerImpl::ProbeTouched(uint64_t page) {
  stats_.probes_touched.fetch_add(1, std::memory_order_relaxed);
  if (!prefetcher_) return Status::Ok();
  prefetcher_->OnProbeTouched(page, &plan_);
  return Prefetch();
}

Status PagerImpl::ServeParked() {
  while (!parked_.empty()) {
    Parked p = parked_.front();
    TS_ASSIGN_OR_RETURN(bool served, OnFault(p.page, p.write, p.since_ns));
    if (!served) return Status::Ok();
    parked_.pop_front();
  }
  return Status::Ok();
}

PagerStats PagerImpl::Stats() const { return Snapshot(stats_, options_.page_size); }

}  // namespace tessera::vnode
