// The IoQueue's driving-thread side: pages handed back by reply callbacks
// (another round, a newer map, a conflict to settle, a write to write again
// above a newer version) and writes deferred
// until their page is free are issued again here, never from a callback.
#include <algorithm>
#include <set>

#include "client/io_queue.h"
#include "common/clock.h"

namespace tessera::client {
namespace {

constexpr int kMaxAttempts = 4;
// How often a write may meet another writer's unfinished write and settle it
// before giving up; how many conflicted pages one Resolve call takes.
constexpr int kMaxResolves = 3;
constexpr size_t kResolveChunk = 1024;
// How often a write may find a newer version in place and be written again
// above it: each time it goes above the newest it saw, so only writers
// racing it on the same page, again and again, can use these up.
constexpr int kMaxRebases = 8;

}  // namespace

Status IoQueueImpl::ServiceRetries() {
  std::vector<PageOp*> pages;
  {
    std::lock_guard lk(mu_);
    pages.swap(retries_);
    retries_waiting_.store(0);
  }
  std::vector<PageOp*> conflicted;
  // One map fetch per stale epoch per pass, however many pages need it.
  std::map<uint64_t, Status> fetched;
  auto refresh = [&](uint64_t epoch) -> Status {
    auto it = fetched.find(epoch);
    if (it == fetched.end()) it = fetched.emplace(epoch, maps_->Refresh(epoch)).first;
    return it->second;
  };
  for (PageOp* page : pages) {
    if (page->state() == PageOp::State::kNeedsResolve && !aborting_.load()) {
      conflicted.push_back(page);
      continue;
    }
    if (page->state() == PageOp::State::kNeedsVersion) {
      if (aborting_.load()) {
        FailPage(page, Cancelled("I/O aborted"));
        continue;
      }
      if (page->rebases() >= kMaxRebases) {
        FailPage(page, Unavailable("page " + std::to_string(page->page()) + ": other writers' newer versions " +
                                   "overtook this write " + std::to_string(kMaxRebases) + " times"));
        continue;
      }
      Rebase(page);
      page->Begin(maps_->Current());
    } else if (page->state() == PageOp::State::kNeedsMap) {
      Status refreshed = aborting_.load() ? Cancelled("I/O aborted")
                         : page->attempts() >= kMaxAttempts
                             ? StaleMap("the region map kept changing over " + std::to_string(kMaxAttempts) +
                                        " attempts")
                             : refresh(page->stale_epoch());
      if (!refreshed.ok()) {
        FailPage(page, refreshed.With("page " + std::to_string(page->page())));
        continue;
      }
      page->Begin(maps_->Current());
    } else if (aborting_.load()) {
      FailPage(page, Cancelled("I/O aborted"));
      continue;
    }
    TS_RETURN_IF_ERROR(Issue(page));
  }
  for (size_t at = 0; at < conflicted.size(); at += kResolveChunk) {
    size_t end = std::min(conflicted.size(), at + kResolveChunk);
    TS_RETURN_IF_ERROR(ResolveAndRetry({conflicted.begin() + at, conflicted.begin() + end}));
  }
  TS_RETURN_IF_ERROR(StartDeferred());
  return FlushIfDue();
}

void IoQueueImpl::Rebase(PageOp* page) {
  // Above every version a share showed (the clock joined them on arrival).
  clock_->Observe(page->newest_held());
  const uint64_t version = clock_->Next();
  // The new version is reserved before the old one goes, so the watermark
  // never passes this write.
  writes_->Reserve(version);
  writes_->Release(page->page(), page->version(), /*taken=*/false);
  page->Rebase(version);
}

Status IoQueueImpl::ResolveAndRetry(std::vector<PageOp*> pages) {
  std::shared_ptr<const RegionMap> map = maps_->Current();
  std::vector<uint64_t> numbers;
  for (PageOp* page : pages) numbers.push_back(page->page());
  std::vector<Status> settled = resolver_.Resolve(*map, numbers);
  for (size_t i = 0; i < pages.size(); ++i) {
    PageOp* page = pages[i];
    page->count_resolve();
    Status s = settled[i];
    if (s.code() == Code::kStaleMap) s = maps_->Refresh(map->epoch());  // then write on the newer map
    if (s.ok() && page->resolves() > kMaxResolves) {
      s = Unavailable("it kept meeting other writers' unfinished writes (" + std::to_string(kMaxResolves) +
                      " times)");
    }
    if (!s.ok()) {
      FailPage(page, s.With("page " + std::to_string(page->page())));
      continue;
    }
    page->Begin(maps_->Current());
    TS_RETURN_IF_ERROR(Issue(page));
  }
  return Status::Ok();
}

Status IoQueueImpl::StartDeferred() {
  if (deferred_.empty()) return Status::Ok();
  // Read first: a release after this wakes the driving thread again.
  deferred_seen_ = writes_->generation();
  std::deque<PageOp*> waiting;
  std::vector<PageOp*> start;
  for (PageOp* page : deferred_) {
    if (aborting_.load()) {
      FailPage(page, Cancelled("I/O aborted"));
    } else if (writes_->TryTake(page->page())) {
      page->set_taken();
      start.push_back(page);
    } else {
      waiting.push_back(page);
    }
  }
  deferred_.swap(waiting);
  for (PageOp* page : start) {
    page->Begin(maps_->Current());
    TS_RETURN_IF_ERROR(Issue(page));
  }
  return Status::Ok();
}

Status IoQueueImpl::Drive(const std::function<bool()>& done, uint64_t deadline_ns) {
  for (;;) {
    TS_RETURN_IF_ERROR(ServiceRetries());
    if (done()) return Status::Ok();
    const uint64_t check_ns = NextSilenceCheck();
    Status waited = pool_->transport().WaitUntil(
        [&] { return retries_waiting_.load() > 0 || DeferredMayStart() || FlushDue() || done(); },
        std::min(deadline_ns, check_ns));
    if (!waited.ok() && (waited.code() != Code::kTimedOut || NowNanos() >= deadline_ns)) return waited;
    if (NowNanos() >= check_ns) AbortSilent();
  }
}

uint64_t IoQueueImpl::NextSilenceCheck() const {
  const uint64_t silence_ns = uint64_t{pool_->silence_ms()} * 1'000'000;
  if (silence_ns == 0 || batches_in_flight_.load() == 0) return UINT64_MAX;
  // A quarter of the silence apart: a node is given up on within 1.25× it.
  return silence_checked_ns_ + silence_ns / 4;
}

void IoQueueImpl::AbortSilent() {
  const uint64_t now = NowNanos();
  silence_checked_ns_ = now;
  const uint64_t silence_ns = uint64_t{pool_->silence_ms()} * 1'000'000;
  std::set<std::shared_ptr<net::Connection>> silent;
  {
    std::lock_guard lk(mu_);
    for (auto& [raw, batch] : in_flight_) {
      if (!batch->conn || now - batch->sent_ns < silence_ns) continue;
      // Heard from after `now` was read (a receiving thread): not silent.
      const uint64_t heard = batch->conn->last_heard_ns();
      if (heard < now && now - heard >= silence_ns) silent.insert(batch->conn);
    }
  }
  // Outside mu_: the aborted requests' callbacks take it.
  for (const auto& conn : silent) {
    conn->Abort(Unavailable("it left a request unanswered and sent nothing for " +
                            std::to_string(pool_->silence_ms()) + " ms"));
  }
}

}  // namespace tessera::client
