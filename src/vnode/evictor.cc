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

bool Evictor::NeedRoom() const {
  uint64_t coming_free = ctx_->staging->draining_pages();
  uint64_t used = ctx_->used() - std::min(coming_free, ctx_->used());
  return used + options_.headroom > ctx_->budget;
}

Status Evictor::Run() {
  Staging& st = *ctx_->staging;
  while (NeedRoom()) {
    // Stock the inactive list first (that costs no I/O and gives staged
    // pages time to be touched); drain its oldest block once it is full, or
    // when nothing more can be deactivated.
    bool moved = false, drained = false;
    if (st.inactive_pages() < options_.inactive_target) TS_RETURN_IF_ERROR(Deactivate(&moved));
    if (NeedRoom() && (st.inactive_pages() >= options_.inactive_target || !moved)) {
      TS_RETURN_IF_ERROR(Drain(&drained));
    }
    if (!moved && !drained) return Status::Ok();  // wait for writes to finish
  }
  return Status::Ok();
}

Status Evictor::Deactivate(bool* progress) {
  ctx_->staging->SealProbeBlock();
  std::optional<uint32_t> block = ctx_->staging->TakeBlock();
  if (!block) return Status::Ok();
  victims_.clear();
  ctx_->policy->PickVictims(*ctx_->table, options_.batch, &victims_);
  std::sort(victims_.begin(), victims_.end());
  uint32_t slot = *block * Staging::kBlockSlots;
  for (size_t i = 0; i < victims_.size();) {
    size_t j = i + 1;
    while (j < victims_.size() && victims_[j] == victims_[j - 1] + 1) ++j;
    TS_RETURN_IF_ERROR(MoveRun(&victims_[i], j - i, &slot));
    i = j;
  }
  ctx_->staging->Seal(*block);
  *progress = slot > *block * Staging::kBlockSlots;
  return Status::Ok();
}

Status Evictor::MoveRun(const uint64_t* pages, size_t n, uint32_t* slot) {
  Staging& st = *ctx_->staging;
  const size_t ps = ctx_->page_size;
  size_t done = 0;
  while (done < n) {
    Result<size_t> moved = st.uffd().Move(st.SlotAddress(*slot), ctx_->Address(pages[done]), (n - done) * ps);
    if (!moved.ok() && AddressSpaceChanging(moved.status())) {
      // Leave the rest resident, back in the policy's ring, for a later batch.
      for (size_t k = done; k < n; ++k) ctx_->policy->Admit(*ctx_->table, pages[k], false);
      return Status::Ok();
    }
    if (!moved.ok() && PageShared(moved.status())) {
      // A fork left the page marked shared; a write fault (made by the
      // kernel, without touching the bytes) makes it ours again. The page is
      // present: no userfault can come of it.
      madvise(ctx_->Address(pages[done]), ctx_->page_size, MADV_POPULATE_WRITE);
      moved = st.uffd().Move(st.SlotAddress(*slot), ctx_->Address(pages[done]), (n - done) * ps);
      if (!moved.ok() && PageShared(moved.status())) {
        ctx_->policy->Admit(*ctx_->table, pages[done], false);  // stays; tried again later
        ++done;
        continue;
      }
    }
    if (!moved.ok() && moved.status().code() != Code::kNotFound) {
      return moved.status().With("evict page " + std::to_string(pages[done]));
    }
    size_t got = moved.ok() ? *moved / ps : 0;
    for (size_t k = done; k < done + got; ++k) {
      PageEntry& e = (*ctx_->table)[pages[k]];
      e.state = PageState::kStaged;
      e.slot = (*slot)++;
      st.Fill(e.slot, pages[k]);
      --ctx_->resident;
    }
    ctx_->stats->evictions.fetch_add(got, std::memory_order_relaxed);
    done += got;
    if (done < n && got == 0) {
      // Nothing mapped there: the program dropped the page without a
      // userfaultfd event (an madvise the kernel did not report). Its
      // content is zeros now, as the program sees it.
      Discard(pages[done]);
      ++done;
    }
  }
  return Status::Ok();
}

Status Evictor::Drain(bool* progress) {
  std::optional<uint32_t> block = ctx_->staging->NextToDrain();
  if (!block) return Status::Ok();
  *progress = true;
  uint32_t first = *block * Staging::kBlockSlots;
  for (uint32_t s = first; s < first + Staging::kBlockSlots; ++s) TS_RETURN_IF_ERROR(DrainSlot(s));
  ctx_->staging->EndDrain(*block);
  ctx_->NoteUsed();
  return Status::Ok();
}

Status Evictor::DrainSlot(uint32_t slot) {
  uint64_t page = ctx_->staging->PageOfSlot(slot);
  if (page >= ctx_->pages) return Status::Ok();
  PageEntry& e = (*ctx_->table)[page];
  if (e.state != PageState::kStaged || e.slot != slot) return Status::Ok();  // rescued or discarded
  const uint8_t* data = ctx_->staging->SlotAddress(slot);
  uint64_t crc = PageCrc(data, ctx_->page_size);
  const bool zero = crc == ctx_->zero_crc && AllZero(data, ctx_->page_size);
  if (e.flags & kProbe) {
    e.flags &= static_cast<uint8_t>(~kProbe);
    if (on_probe_untouched_) on_probe_untouched_();
  }
  if (zero || (crc == e.crc && !(e.flags & kForceWrite))) {
    // Unchanged since it came in (or zeros): the pool's copy is current.
    e.state = zero ? PageState::kZero : PageState::kRemote;
    e.flags = 0;
    ctx_->staging->Release(slot, false);
    ctx_->stats->clean_drops.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  return SubmitWrite(page, slot);
}

Status Evictor::SubmitWrite(uint64_t page, uint32_t slot) {
  PageEntry& e = (*ctx_->table)[page];
  e.state = PageState::kWriteback;
  e.flags &= static_cast<uint8_t>(~kForceWrite);
  PageIo io{.kind = PageIo::Kind::kWrite, .first_page = page, .page_count = 1,
            .buffer = ctx_->staging->SlotAddress(slot), .user_data = WriteTag(slot, page)};
  return ctx_->queue->Submit({&io, 1});
}

Status Evictor::OnWriteDone(uint64_t tag, const Status& status) {
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
  void* addr = ctx_->Address(page);
  if (e.state == PageState::kStaged) {
    // Moves into the managed range go through its own descriptor.
    Result<size_t> moved = ctx_->uffd->Move(addr, st.SlotAddress(e.slot), ctx_->page_size);
    if (!moved.ok() && AddressSpaceChanging(moved.status())) return false;
    if (!moved.ok()) return moved.status().With("bring back page " + std::to_string(page));
    st.Release(e.slot, true);
  } else {
    CHECK(e.state == PageState::kWriteback);
    // The write may still be reading the slot: copy, and let the write's
    // completion release it.
    Status s = ctx_->uffd->Copy(addr, st.SlotAddress(e.slot), ctx_->page_size);
    if (AddressSpaceChanging(s)) return false;
    if (!s.ok()) return s.With("bring back page " + std::to_string(page));
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
  switch (e.state) {
    case PageState::kResident:
      --ctx_->resident;
      break;
    case PageState::kStaged:
      ctx_->staging->Release(e.slot, false);
      break;
    case PageState::kZero:
    case PageState::kRemote:
    case PageState::kFetching:   // the read's completion finds it gone
    case PageState::kWriteback:  // the write's completion releases the slot
      break;
  }
  e.state = PageState::kZero;
  e.flags = 0;
  ctx_->NoteUsed();
}

}  // namespace tessera::vnode
