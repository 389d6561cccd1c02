#include "vnode/fetcher.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>

#include "common/check.h"
#include "common/clock.h"

namespace tessera::vnode {

Fetcher::Fetcher(PagingContext* ctx, uint32_t max_in_flight, uint32_t max_prefetch)
    : ctx_(ctx), buffers_(max_in_flight), max_prefetch_(max_prefetch) {
  arena_bytes_ = size_t{max_in_flight} * ctx->page_size;
  void* p = mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED) << "cannot map " << arena_bytes_ << " bytes of fetch buffers";
  arena_ = static_cast<uint8_t*>(p);
  for (uint32_t i = max_in_flight; i > 0; --i) {
    buffers_[i - 1].data = arena_ + size_t{i - 1} * ctx->page_size;
    free_.push_back(i - 1);
  }
}

Fetcher::~Fetcher() { munmap(arena_, arena_bytes_); }

Status Fetcher::Start(uint64_t page, uint64_t demand_ns, bool probe) {
  CHECK(CanStart());
  PageEntry& e = ctx_->table->operator[](page);
  CHECK(e.state == PageState::kRemote) << "fetch of a " << PageStateName(e.state) << " page";
  uint32_t i = free_.back();
  free_.pop_back();
  buffers_[i].page = page;
  buffers_[i].demand_ns = demand_ns;
  buffers_[i].prefetch = demand_ns == 0;
  prefetching_ += demand_ns == 0;
  e.state = PageState::kFetching;
  e.slot = i;
  e.flags = static_cast<uint8_t>((e.flags & kForceWrite) | (demand_ns == 0 ? kPrefetched : 0) | (probe ? kProbe : 0));
  ++ctx_->fetches_in_flight;
  ctx_->NoteUsed();
  (demand_ns != 0 ? ctx_->stats->remote_faults : ctx_->stats->prefetches).fetch_add(1, std::memory_order_relaxed);
  return Submit(i);
}

Status Fetcher::Submit(uint32_t index) {
  PageIo io{.kind = PageIo::Kind::kRead, .first_page = buffers_[index].page, .page_count = 1,
            .buffer = buffers_[index].data, .user_data = ReadTag(index, buffers_[index].page)};
  return ctx_->queue->Submit({&io, 1});
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
  uint32_t i = TagIndex(tag);
  Buffer& b = buffers_[i];
  PageEntry& e = ctx_->table->operator[](b.page);
  const bool current = e.state == PageState::kFetching && e.slot == i;
  if (!current) {
    // The page was discarded (and perhaps refilled) while its read flew. A
    // thread that faulted on it meanwhile must retry against its new state.
    Finish(i);
    return ctx_->uffd->Wake(ctx_->Address(b.page), ctx_->page_size);
  }
  if (!status.ok()) {
    ctx_->stats->io_errors.fetch_add(1, std::memory_order_relaxed);
    if (status.code() == Code::kDataLoss || status.code() == Code::kCorruption) {
      std::fprintf(stderr, "tessera: page %llu of the managed memory cannot be read: %s\n",
                   static_cast<unsigned long long>(b.page), status.ToString().c_str());
      std::abort();
    }
    return Submit(i);  // transient: the pool is degraded or restarting
  }
  return Install(i);
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
  // Counted before the copy wakes the thread, so that it sees its own fault.
  ctx_->stats->pages_read.fetch_add(1, std::memory_order_relaxed);
  Status s = ctx_->uffd->Copy(ctx_->Address(b.page), b.data, ctx_->page_size);
  if (s.code() == Code::kAlreadyExists) s = ctx_->uffd->Wake(ctx_->Address(b.page), ctx_->page_size);
  if (!s.ok()) ctx_->stats->pages_read.fetch_sub(1, std::memory_order_relaxed);
  if (AddressSpaceChanging(s)) {
    to_install_.push_back(i);
    return Status::Ok();
  }
  if (!s.ok()) return s.With("install page " + std::to_string(b.page));
  e.crc = PageCrc(b.data, ctx_->page_size);
  e.state = PageState::kResident;
  ++ctx_->resident;
  ctx_->policy->Admit(*ctx_->table, b.page, false);
  if (b.demand_ns != 0) {
    std::lock_guard lk(ctx_->stats->latency_mu);
    ctx_->stats->latency.Record(NowNanos() - b.demand_ns);
  }
  Finish(i);
  return Status::Ok();
}

Status Fetcher::RetryInstalls() {
  std::vector<uint32_t> again;
  again.swap(to_install_);
  for (uint32_t i : again) {
    PageEntry& e = ctx_->table->operator[](buffers_[i].page);
    if (e.state == PageState::kFetching && e.slot == i) {
      TS_RETURN_IF_ERROR(Install(i));
    } else {
      Finish(i);  // discarded meanwhile
    }
  }
  return Status::Ok();
}

void Fetcher::Finish(uint32_t index) {
  --ctx_->fetches_in_flight;
  prefetching_ -= buffers_[index].prefetch;
  buffers_[index].prefetch = false;
  free_.push_back(index);
  ctx_->NoteUsed();
}

}  // namespace tessera::vnode
