#include "vnode/evictor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "common/clock.h"

namespace tessera::vnode {
namespace {

bool AllZero(const uint8_t* p, size_t n) { return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0; }

}  // namespace

Evictor::Evictor(PagingContext* ctx, const EvictorOptions& options, std::function<void(uint64_t page)> on_probe_untouched)
    : ctx_(ctx), options_(options), on_probe_untouched_(std::move(on_probe_untouched)) {
  shadow_bytes_ = ctx->space->layout().staging_bytes();
  void* p = mmap(nullptr, shadow_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  CHECK(p != MAP_FAILED) << "cannot map " << shadow_bytes_ << " bytes for pages being written back";
  shadow_ = static_cast<uint8_t*>(p);
  block_pending_.resize(ctx->space->layout().staging_blocks);
  scratch_.resize(ctx->page_size);
}

Evictor::~Evictor() { munmap(shadow_, shadow_bytes_); }

bool Evictor::NeedRoom() const {
  uint64_t coming_free = ctx_->staging->draining_pages();
  uint64_t used = ctx_->used() - std::min(coming_free, ctx_->used());
  return used + options_.headroom > ctx_->budget;
}

Status Evictor::Run() {
  TS_RETURN_IF_ERROR(SubmitReleases());
  Staging& st = *ctx_->staging;
  while (NeedRoom()) {
    // Stock the inactive list first (that costs no I/O and gives staged
    // pages time to be touched); drain its oldest block once it is full, or
    // when nothing more can be deactivated.
    bool moved = false, drained = false;
    if (st.inactive_pages() + evicting_ < options_.inactive_target) TS_RETURN_IF_ERROR(Deactivate(&moved));
    if (NeedRoom() && (st.inactive_pages() >= options_.inactive_target || !moved)) {
      TS_RETURN_IF_ERROR(Drain(&drained));
    }
    if (!moved && !drained) return Status::Ok();  // wait for moves and writes to finish
  }
  return Status::Ok();
}

Status Evictor::Deactivate(bool* progress) {
  Staging& st = *ctx_->staging;
  st.SealProbeBlock();
  std::optional<uint32_t> block = st.TakeBlock();
  if (!block) return Status::Ok();
  victims_.clear();
  ctx_->policy->PickVictims(*ctx_->table, options_.batch, &victims_);
  std::sort(victims_.begin(), victims_.end());
  uint32_t slot = *block * Staging::kBlockSlots;
  block_pending_[*block] = 1;  // held until every run is asked, so no early seal
  for (size_t i = 0; i < victims_.size();) {
    size_t j = i + 1;
    while (j < victims_.size() && victims_[j] == victims_[j - 1] + 1 && j - i < kMaxMovePages) ++j;
    MoveRunInfo run{.first_page = victims_[i], .pages = static_cast<uint32_t>(j - i), .first_slot = slot, .block = *block};
    slot += run.pages;
    TS_RETURN_IF_ERROR(StartMove(run));
    i = j;
  }
  *progress = !victims_.empty();
  return RunDone(*block);
}

Status Evictor::StartMove(const MoveRunInfo& run) {
  for (uint32_t k = 0; k < run.pages; ++k) (*ctx_->table)[run.first_page + k].state = PageState::kEvicting;
  evicting_ += run.pages;
  ctx_->stats->eviction_moves.fetch_add(1, std::memory_order_relaxed);
  ++block_pending_[run.block];
  const uint32_t token = next_token_++;
  MoveResult result;
  TS_ASSIGN_OR_RETURN(bool done, ctx_->space->Evict(ctx_->staging->SlotAddress(run.first_slot),
                                                    ctx_->Address(run.first_page), run.pages, token, &result));
  if (!done) {
    moves_.emplace(token, run);
    return Status::Ok();
  }
  return FinishMove(run, result);
}

Status Evictor::OnMoved(uint32_t token, const MoveResult& result) {
  auto it = moves_.find(token);
  if (it == moves_.end()) return ProtocolError("a move result for token " + std::to_string(token) + " never asked for");
  MoveRunInfo run = it->second;
  moves_.erase(it);
  return FinishMove(run, result);
}

Status Evictor::FinishMove(const MoveRunInfo& run, const MoveResult& result) {
  Staging& st = *ctx_->staging;
  uint64_t moved = 0;
  for (uint32_t k = 0; k < run.pages; ++k) {
    const uint64_t page = run.first_page + k;
    PageEntry& e = (*ctx_->table)[page];
    CHECK(e.state == PageState::kEvicting) << "page " << page << " is " << PageStateName(e.state);
    --evicting_;
    const bool discarded = (e.flags & kDiscarded) != 0;
    e.flags &= static_cast<uint8_t>(~kDiscarded);
    e.state = PageState::kResident;
    if (result.moved & (uint64_t{1} << k)) {
      e.state = PageState::kStaged;
      e.slot = run.first_slot + k;
      st.Fill(e.slot, page);
      --ctx_->resident;
      ++moved;
      if (discarded) Discard(page);
    } else if (discarded || (result.missing & (uint64_t{1} << k))) {
      // Nothing mapped there: the program dropped the page (reported or
      // not). Its content is zeros now, as the program sees it.
      Discard(page);
    } else {
      ctx_->policy->Admit(*ctx_->table, page, false);  // stays resident; a later batch tries again
    }
  }
  ctx_->stats->evictions.fetch_add(moved, std::memory_order_relaxed);
  return RunDone(run.block);
}

Status Evictor::RunDone(uint32_t block) {
  if (--block_pending_[block] == 0) ctx_->staging->Seal(block);
  return Status::Ok();
}

Status Evictor::Drain(bool* progress) {
  std::optional<uint32_t> block = ctx_->staging->NextToDrain();
  if (!block) return Status::Ok();
  *progress = true;
  // Copy the block's staged pages out in one call, and let its memory go:
  // the copies are what gets checked and written.
  const uint32_t first = *block * Staging::kBlockSlots;
  from_.clear();
  to_.clear();
  for (uint32_t s = first; s < first + Staging::kBlockSlots; ++s) {
    if (!StagedPageAt(s)) continue;
    from_.push_back(ctx_->staging->SlotAddress(s));
    to_.push_back(Shadow(s));
  }
  TS_RETURN_IF_ERROR(ctx_->space->ReadPages(from_, to_));
  TS_RETURN_IF_ERROR(ctx_->staging->Drop(*block));
  for (uint32_t s = first; s < first + Staging::kBlockSlots; ++s) TS_RETURN_IF_ERROR(DrainSlot(s));
  ctx_->NoteUsed();
  return Status::Ok();
}

std::optional<uint64_t> Evictor::StagedPageAt(uint32_t slot) const {
  uint64_t page = ctx_->staging->PageOfSlot(slot);
  if (page >= ctx_->pages) return std::nullopt;
  const PageEntry& e = (*ctx_->table)[page];
  if (e.state != PageState::kStaged || e.slot != slot) return std::nullopt;  // rescued or discarded
  return page;
}

Status Evictor::DrainSlot(uint32_t slot) {
  std::optional<uint64_t> staged = StagedPageAt(slot);
  if (!staged) return Status::Ok();
  const uint64_t page = *staged;
  PageEntry& e = (*ctx_->table)[page];
  const uint8_t* data = Shadow(slot);
  uint64_t crc = PageCrc(data, ctx_->page_size);
  const bool zero = crc == ctx_->zero_crc && AllZero(data, ctx_->page_size);
  if (e.flags & kProbe) {
    e.flags &= static_cast<uint8_t>(~kProbe);
    if (on_probe_untouched_) on_probe_untouched_(page);
  }
  // Zeros where the pool holds other content are released lazily (they are
  // zeros here whatever the pool says) — but not while a fork settles: the
  // child's table, copied at the fork, says the pool holds this page, and a
  // child reads what the pool holds. Then they are written like any change.
  const bool stale_in_pool = zero && e.crc != ctx_->zero_crc;
  if ((zero && !(stale_in_pool && settling_)) || (crc == e.crc && !(e.flags & kForceWrite))) {
    // Unchanged since it came in (or zeros): the pool's copy is current, or
    // to be released.
    if (zero && e.crc != ctx_->zero_crc) release_.push_back(page);
    e.state = zero ? PageState::kZero : PageState::kRemote;
    e.flags = 0;
    ctx_->staging->Release(slot, false);
    ctx_->stats->clean_drops.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  return SubmitWrite(page, slot);
}

Result<bool> Evictor::Settle() {
  ctx_->staging->SealProbeBlock();
  settling_ = true;
  bool drained = true;
  Status s;
  while (drained && s.ok()) {
    drained = false;
    s = Drain(&drained);
  }
  settling_ = false;
  TS_RETURN_IF_ERROR(s);
  return evicting_ == 0 && writing_ == 0 && failed_.empty() && ctx_->staging->inactive_pages() == 0;
}

Status Evictor::SubmitWrite(uint64_t page, uint32_t slot) {
  ++writing_;
  PageEntry& e = (*ctx_->table)[page];
  e.state = PageState::kWriteback;
  e.flags &= static_cast<uint8_t>(~kForceWrite);
  PageIo io{.kind = PageIo::Kind::kWrite, .first_page = page, .page_count = 1,
            .buffer = Shadow(slot), .user_data = WriteTag(slot, page)};
  return ctx_->queue->Submit({&io, 1});
}

Status Evictor::OnWriteDone(uint64_t tag, const Status& status) {
  --writing_;
  uint64_t page = TagPage(tag);
  uint32_t slot = TagIndex(tag);
  PageEntry& e = (*ctx_->table)[page];
  const bool current = e.state == PageState::kWriteback && e.slot == slot;
  if (status.ok()) {
    ctx_->stats->pages_written.fetch_add(1, std::memory_order_relaxed);
    if (current) e.state = PageState::kRemote;
  } else {
    ctx_->stats->io_errors.fetch_add(1, std::memory_order_relaxed);
    if (current) {
      // Keep the slot: the content exists nowhere else. Try again later.
      failed_.push_back({page, slot});
      return Status::Ok();
    }
    // Back in the range already: its next eviction must write it.
    if (e.state == PageState::kResident || e.state == PageState::kStaged) e.flags |= kForceWrite;
  }
  ctx_->staging->Release(slot, false);
  ctx_->NoteUsed();
  return Status::Ok();
}

Status Evictor::RetryFailed(uint64_t now_ns) {
  if (failed_.empty() || now_ns < next_retry_ns_) return Status::Ok();
  next_retry_ns_ = now_ns + 1'000'000'000;
  std::deque<FailedWrite> again;
  again.swap(failed_);
  for (const FailedWrite& f : again) {
    PageEntry& e = (*ctx_->table)[f.page];
    if (e.state == PageState::kWriteback && e.slot == f.slot) {
      TS_RETURN_IF_ERROR(SubmitWrite(f.page, f.slot));
    } else {
      ctx_->staging->Release(f.slot, false);
    }
  }
  return Status::Ok();
}

Result<bool> Evictor::Rescue(uint64_t page) {
  PageEntry& e = (*ctx_->table)[page];
  Staging& st = *ctx_->staging;
  uint8_t* addr = ctx_->Address(page);
  if (e.state == PageState::kStaged) {
    Result<bool> moved_out = ctx_->space->BringBack(addr, st.SlotAddress(e.slot), scratch_.data());
    if (!moved_out.ok() && AddressSpaceChanging(moved_out.status())) return false;
    if (!moved_out.ok()) return moved_out.status().With("bring back page " + std::to_string(page));
    st.Release(e.slot, *moved_out);
  } else {
    CHECK(e.state == PageState::kWriteback);
    // The write may still be reading the copy: copy it in, and let the
    // write's completion release the slot.
    Status s = ctx_->uffd->Copy(addr, Shadow(e.slot), ctx_->page_size);
    if (AddressSpaceChanging(s)) return false;
    if (!s.ok()) return s.With("bring back page " + std::to_string(page));
    // The pool is to hold this content, not what came in before: were the
    // page changed back to that, it would pass for clean and the write in
    // flight would win (a lost write). Should the write fail, kForceWrite
    // says so.
    e.crc = PageCrc(Shadow(e.slot), ctx_->page_size);
  }
  e.state = PageState::kResident;
  ++ctx_->resident;
  // A probe's first touch is its first use, not a sign of reuse.
  ctx_->policy->Admit(*ctx_->table, page, !(e.flags & kProbe));
  ctx_->stats->rescues.fetch_add(1, std::memory_order_relaxed);
  ctx_->NoteUsed();
  return true;
}

void Evictor::Discard(uint64_t page) {
  PageEntry& e = (*ctx_->table)[page];
  // A page installed with other content than zeros came from the pool, or
  // went there: the pool still holds it.
  bool pooled = e.crc != ctx_->zero_crc;
  switch (e.state) {
    case PageState::kEvicting:
      e.flags |= kDiscarded;  // settled when the move's result comes
      return;
    case PageState::kResident:
      --ctx_->resident;
      break;
    case PageState::kStaged:
      ctx_->staging->Release(e.slot, false);
      break;
    case PageState::kZero:
      pooled = false;
      break;
    case PageState::kRemote:
    case PageState::kFetching:   // the read's completion finds it gone
    case PageState::kWriteback:  // the write's completion releases the slot; the release lands after it
      pooled = true;
      break;
  }
  if (pooled) release_.push_back(page);
  e.state = PageState::kZero;
  e.flags = 0;
  ctx_->NoteUsed();
}

Status Evictor::SubmitReleases() {
  // Allocators give freed memory back and take it again soon: a page touched
  // again before its release went out is written when evicted, not released.
  constexpr uint64_t kReleaseEveryNs = 100'000'000;
  // Shorter runs are mostly an allocator's small spans: they cost a write
  // each, churn, and free little at the memory nodes (whose pages hold
  // several shares), so their stale copies stay until the region goes.
  constexpr uint32_t kMinReleasePages = 16;
  if (release_.empty()) return Status::Ok();
  const uint64_t now = NowNanos();
  if (now < next_release_ns_) return Status::Ok();
  next_release_ns_ = now + kReleaseEveryNs;
  std::sort(release_.begin(), release_.end());
  release_.erase(std::unique(release_.begin(), release_.end()), release_.end());
  std::erase_if(release_, [&](uint64_t p) { return (*ctx_->table)[p].state != PageState::kZero; });
  std::vector<PageIo> runs;
  for (size_t i = 0; i < release_.size();) {
    size_t j = i + 1;
    while (j < release_.size() && release_[j] == release_[j - 1] + 1 && j - i < (1u << 20)) ++j;
    const auto pages = static_cast<uint32_t>(j - i);
    if (pages >= kMinReleasePages) {
      runs.push_back({.kind = PageIo::Kind::kZero, .first_page = release_[i], .page_count = pages,
                      .user_data = ReleaseTag(pages)});
    }
    i = j;
  }
  release_.clear();
  return ctx_->queue->Submit(runs);
}

void Evictor::OnReleased(uint64_t tag, const Status& status) {
  // A release that failed leaves stale bytes the program will never read
  // (its pages are zeros here): memory held, nothing wrong.
  if (status.ok()) {
    ctx_->stats->pages_released.fetch_add(TagPage(tag), std::memory_order_relaxed);
  } else {
    ctx_->stats->io_errors.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace tessera::vnode
