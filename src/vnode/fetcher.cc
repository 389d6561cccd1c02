#include "vnode/fetcher.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/check.h"
#include "common/clock.h"

namespace tessera::vnode {

Fetcher::Fetcher(PagingContext* ctx, uint32_t max_in_flight, uint32_t max_prefetch)
    : ctx_(ctx), buffers_(max_in_flight), free_count_(max_in_flight), max_prefetch_(max_prefetch) {
  arena_bytes_ = size_t{max_in_flight} * ctx->page_size;
  void* p = mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED) << "cannot map " << arena_bytes_ << " bytes of fetch buffers";
  arena_ = static_cast<uint8_t*>(p);
  for (uint32_t i = 0; i < max_in_flight; ++i) buffers_[i].data = arena_ + size_t{i} * ctx->page_size;
}

Fetcher::~Fetcher() { munmap(arena_, arena_bytes_); }

uint32_t Fetcher::PrefetchRoom() const {
  const uint64_t used = ctx_->used();
  const uint64_t budget = ctx_->budget > used ? ctx_->budget - used : 0;
  const uint64_t room = std::min<uint64_t>({max_prefetch_ - prefetching_, free_count_, budget});
  return static_cast<uint32_t>(room);
}

uint32_t Fetcher::TakeRun(uint32_t want, uint32_t* count) {
  const uint32_t n = static_cast<uint32_t>(buffers_.size());
  if (want == 1) {
    // Single pages from the top, runs from the bottom: the runs stay whole.
    for (uint32_t i = n; i > 0; --i) {
      if (buffers_[i - 1].free) {
        *count = 1;
        return i - 1;
      }
    }
  }
  uint32_t best = n, best_len = 0;
  for (uint32_t i = 0; i < n;) {
    if (!buffers_[i].free) {
      ++i;
      continue;
    }
    uint32_t j = i;
    while (j < n && j - i < want && buffers_[j].free) ++j;
    if (j - i == want) {
      *count = want;
      return i;
    }
    if (j - i > best_len) best = i, best_len = j - i;
    while (j < n && buffers_[j].free) ++j;
    i = j;
  }
  CHECK(best_len > 0) << "no free fetch buffer";
  *count = best_len;
  return best;
}

void Fetcher::Claim(uint32_t index, uint64_t page, uint64_t demand_ns, bool probe) {
  PageEntry& e = ctx_->table->operator[](page);
  CHECK(e.state == PageState::kRemote) << "fetch of a " << PageStateName(e.state) << " page";
  Buffer& b = buffers_[index];
  CHECK(b.free);
  b = Buffer{.data = b.data, .page = page, .demand_ns = demand_ns, .run = 0, .prefetch = demand_ns == 0, .free = false};
  --free_count_;
  prefetching_ += b.prefetch;
  e.state = PageState::kFetching;
  e.slot = index;
  e.flags = static_cast<uint8_t>((e.flags & kForceWrite) | (b.prefetch ? kPrefetched : 0) | (probe ? kProbe : 0));
  ++ctx_->fetches_in_flight;
  (b.prefetch ? ctx_->stats->prefetches : ctx_->stats->remote_faults).fetch_add(1, std::memory_order_relaxed);
}

Status Fetcher::Start(uint64_t page, uint64_t demand_ns) {
  CHECK(CanStart() && demand_ns != 0);
  uint32_t count = 0;
  const uint32_t i = TakeRun(1, &count);
  Claim(i, page, demand_ns, false);
  buffers_[i].run = 1;
  ctx_->NoteUsed();
  return Submit(i);
}

Status Fetcher::StartPrefetch(uint64_t first, uint32_t count, std::optional<uint64_t> probe) {
  CHECK(count > 0 && count <= PrefetchRoom());
  uint32_t n = 0;
  const uint32_t i = TakeRun(count, &n);
  for (uint32_t j = 0; j < n; ++j) Claim(i + j, first + j, 0, probe == first + j);
  buffers_[i].run = n;
  ctx_->NoteUsed();
  return Submit(i);
}

Status Fetcher::Submit(uint32_t index) {
  const Buffer& b = buffers_[index];
  PageIo io{.kind = PageIo::Kind::kRead, .first_page = b.page, .page_count = b.run, .buffer = b.data,
            .user_data = ReadTag(index, b.page)};
  return ctx_->queue->Submit({&io, 1});
}

bool Fetcher::Current(uint32_t index) const {
  const PageEntry& e = ctx_->table->operator[](buffers_[index].page);
  return e.state == PageState::kFetching && e.slot == index;
}

bool Fetcher::AnyCurrent(uint32_t first, uint32_t count) const {
  for (uint32_t i = first; i < first + count; ++i) {
    if (Current(i)) return true;
  }
  return false;
}

bool Fetcher::Ordinary(uint32_t index) const {
  const PageEntry& e = ctx_->table->operator[](buffers_[index].page);
  return Current(index) && !((e.flags & kProbe) && buffers_[index].demand_ns == 0);
}

bool Fetcher::Join(uint64_t page, uint64_t now_ns) {
  PageEntry& e = ctx_->table->operator[](page);
  Buffer& b = buffers_[e.slot];
  if (b.demand_ns == 0) b.demand_ns = now_ns;
  if (e.flags & kPrefetched) {
    ctx_->stats->prefetch_hits.fetch_add(1, std::memory_order_relaxed);
  } else {
    ctx_->stats->waits.fetch_add(1, std::memory_order_relaxed);
  }
  const bool probe = (e.flags & kProbe) != 0;
  e.flags &= static_cast<uint8_t>(~(kPrefetched | kProbe));
  return probe;
}

Status Fetcher::OnDone(uint64_t tag, const Status& status) {
  const uint32_t first = TagIndex(tag);
  const uint32_t count = buffers_[first].run;
  CHECK(count > 0 && first + count <= buffers_.size()) << "a completion for no read in flight";
  if (!status.ok() && AnyCurrent(first, count)) {
    ctx_->stats->io_errors.fetch_add(1, std::memory_order_relaxed);
    if (status.code() == Code::kDataLoss || status.code() == Code::kCorruption) {
      std::fprintf(stderr, "tessera: page %llu of the managed memory cannot be read: %s\n",
                   static_cast<unsigned long long>(buffers_[first].page), status.ToString().c_str());
      std::abort();
    }
    return Submit(first);  // transient: the pool is degraded or restarting
  }
  return InstallRun(first, count);
}

Status Fetcher::InstallRun(uint32_t first, uint32_t count) {
  buffers_[first].run = 0;
  uint32_t run = first;  // start of the pages gathered for one copy
  for (uint32_t i = first; i <= first + count; ++i) {
    const bool end = i == first + count;
    if (!end && Ordinary(i)) continue;
    if (i > run) TS_RETURN_IF_ERROR(CopyIn(run, i - run));
    run = i + 1;
    if (end) break;
    if (Current(i)) {
      TS_RETURN_IF_ERROR(Install(i));  // a probe
      continue;
    }
    // The page was discarded (and perhaps refilled) while its read flew. A
    // thread that faulted on it meanwhile must retry against its new state.
    Finish(i);
    TS_RETURN_IF_ERROR(ctx_->uffd->Wake(ctx_->Address(buffers_[i].page), ctx_->page_size));
  }
  return Status::Ok();
}

Status Fetcher::CopyIn(uint32_t index, uint32_t count) {
  const size_t ps = ctx_->page_size;
  while (count > 0) {
    const uint64_t page = buffers_[index].page;
    // Counted before the copy wakes the threads, so that each sees its own fault.
    ctx_->stats->pages_read.fetch_add(count, std::memory_order_relaxed);
    size_t copied = 0;
    Status s = ctx_->uffd->Copy(ctx_->Address(page), buffers_[index].data, count * ps, &copied);
    uint32_t in = static_cast<uint32_t>(copied / ps);
    if (s.code() == Code::kAlreadyExists) {
      // A page is there already (the kernel has not carried out a discard
      // yet): it takes the content it has, and its waiters need waking.
      s = ctx_->uffd->Wake(ctx_->Address(page + in), ps);
      if (s.ok()) ++in;
    }
    ctx_->stats->pages_read.fetch_sub(count - in, std::memory_order_relaxed);
    for (uint32_t j = 0; j < in; ++j) Installed(index + j);
    index += in;
    count -= in;
    if (count == 0) return Status::Ok();
    if (AddressSpaceChanging(s)) {
      for (uint32_t j = 0; j < count; ++j) to_install_.push_back(index + j);
      return Status::Ok();
    }
    if (!s.ok()) return s.With("install page " + std::to_string(buffers_[index].page));
  }
  return Status::Ok();
}

void Fetcher::Installed(uint32_t index) {
  Buffer& b = buffers_[index];
  PageEntry& e = ctx_->table->operator[](b.page);
  e.crc = PageCrc(b.data, ctx_->page_size);
  e.state = PageState::kResident;
  ++ctx_->resident;
  ctx_->policy->Admit(*ctx_->table, b.page, false);
  if (b.demand_ns != 0) {
    std::lock_guard lk(ctx_->stats->latency_mu);
    ctx_->stats->latency.Record(NowNanos() - b.demand_ns);
  }
  Finish(index);
}

Result<bool> Fetcher::InstallProbe(uint32_t i) {
  Buffer& b = buffers_[i];
  Staging& st = *ctx_->staging;
  std::optional<uint32_t> slot = st.TakeProbeSlot(b.page);
  if (!slot) return false;
  Status s = ctx_->staging_uffd->Copy(st.SlotAddress(*slot), b.data, ctx_->page_size);
  if (!s.ok()) {
    st.Release(*slot, true);  // nothing landed there
    if (!AddressSpaceChanging(s)) return s.With("stage probe page " + std::to_string(b.page));
    to_install_.push_back(i);  // after the pending events are read
    return true;
  }
  PageEntry& e = ctx_->table->operator[](b.page);
  e.crc = PageCrc(b.data, ctx_->page_size);
  e.state = PageState::kStaged;
  e.slot = *slot;
  ctx_->stats->pages_read.fetch_add(1, std::memory_order_relaxed);
  Finish(i);
  return true;
}

Status Fetcher::Install(uint32_t i) {
  Buffer& b = buffers_[i];
  PageEntry& e = ctx_->table->operator[](b.page);
  if ((e.flags & kProbe) && b.demand_ns == 0) {
    TS_ASSIGN_OR_RETURN(bool staged, InstallProbe(i));
    if (staged) return Status::Ok();
    e.flags &= static_cast<uint8_t>(~kProbe);  // no room in staging: an ordinary prefetch
  }
  return CopyIn(i, 1);
}

Status Fetcher::RetryInstalls() {
  std::vector<uint32_t> again;
  again.swap(to_install_);
  for (size_t k = 0; k < again.size();) {
    const uint32_t i = again[k];
    if (!Current(i)) {
      Finish(i);  // discarded meanwhile
      ++k;
      continue;
    }
    // Pages of one read wait here in order: they go in together again.
    size_t n = 1;
    const bool ordinary = Ordinary(i);
    while (ordinary && k + n < again.size() && again[k + n] == i + n &&
           buffers_[i + n].page == buffers_[i].page + n && Ordinary(i + n)) {
      ++n;
    }
    TS_RETURN_IF_ERROR(n == 1 ? Install(i) : CopyIn(i, static_cast<uint32_t>(n)));
    k += n;
  }
  return Status::Ok();
}

void Fetcher::Finish(uint32_t index) {
  Buffer& b = buffers_[index];
  --ctx_->fetches_in_flight;
  prefetching_ -= b.prefetch;
  b.prefetch = false;
  b.free = true;
  b.run = 0;
  ++free_count_;
  ctx_->NoteUsed();
}

}  // namespace tessera::vnode
