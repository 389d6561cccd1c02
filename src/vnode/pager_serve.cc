// How a pager comes to serve a space (a fresh one, or a forked child's with
// the table its parent gave it), and the fork that makes one from another.
#include "vnode/pager_impl.h"

#include <unistd.h>

#include "common/clock.h"

namespace tessera::vnode {

Status PagerImpl::OnFork(UniqueFd child_uffd) {
  if (!options_.on_fork) return Internal("the program forked, and nothing here serves its child");
  // What the child holds is what was resident when it was made: copy the
  // table before anything changes, then settle the rest into the pool.
  TS_ASSIGN_OR_RETURN(PageTable table, table_.ForkCopy());
  TS_RETURN_IF_ERROR(SettleForFork());
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Space> space, space_->Fork(std::move(child_uffd)));
  --unsettled_forks_;  // Step answers the parent's kForked once none is left
  return options_.on_fork({std::move(space), std::move(table)});
}

Status PagerImpl::ReadEvents(std::vector<UffdEvent>* into) {
  const size_t before = into->size();
  TS_RETURN_IF_ERROR(space_->uffd().ReadEvents(into));
  for (size_t i = before; i < into->size(); ++i) unsettled_forks_ += (*into)[i].kind == UffdEvent::Kind::kFork;
  return Status::Ok();
}

Status PagerImpl::SettleForFork() {
  const uint64_t deadline = NowNanos() + 60'000'000'000ull;
  for (;;) {
    TS_RETURN_IF_ERROR(TakeCompletions());
    // An event waits to be read before the thread that caused it goes on —
    // the helper's madvise of a drained staging block among them.
    TS_RETURN_IF_ERROR(ReadEvents(&later_));
    TS_RETURN_IF_ERROR(evictor_.RetryFailed(NowNanos()));
    TS_ASSIGN_OR_RETURN(bool settled, evictor_.Settle());
    if (settled) return Status::Ok();
    if (NowNanos() > deadline) return Unavailable("evicted pages did not reach the pool within 60 s of a fork");
    if (queue_->outstanding() > 0) {
      TS_RETURN_IF_ERROR(Reap(1, 1));
    } else {
      usleep(100);  // the program's helper is moving pages
    }
  }
}

void PagerImpl::AdoptResident() {
  table_.ForEachTouched([this](uint64_t p) {
    if (table_[p].state != PageState::kResident) return;
    ++ctx_.resident;
    policy_->Admit(table_, p, false);
  });
  ctx_.NoteUsed();
}

uint32_t StagingBlocksFor(const PagerOptions& options) {
  // The inactive share, blocks draining meanwhile, and slack.
  const uint64_t budget = options.cache_bytes / options.page_size;
  const uint64_t inactive = static_cast<uint64_t>(static_cast<double>(budget) * options.inactive_fraction);
  return static_cast<uint32_t>(inactive / Staging::kBlockSlots + budget / Staging::kBlockSlots / 4 + 16);
}

Result<std::unique_ptr<Pager>> Pager::Start(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                            uint64_t pages) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Space> space,
                      LocalSpace::Create(pages, StagingBlocksFor(options), options.page_size));
  return Serve(options, std::move(queue), std::move(space));
}

namespace {

Result<std::unique_ptr<PagerImpl>> MakePager(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                             std::unique_ptr<Space> space, std::optional<PageTable> table) {
  const uint64_t budget = options.cache_bytes / options.page_size;
  if (budget < 16) return InvalidArgument("the cache must hold at least 16 pages");
  const SpaceLayout& l = space->layout();
  if (l.pages == 0) return InvalidArgument("nothing to map: zero pages");
  if (l.page_size != options.page_size) return InvalidArgument("the space's page size is not the pager's");
  if (l.staging_blocks < StagingBlocksFor(options)) return InvalidArgument("the staging area is too small for the cache");
  if (table && table->size() != l.pages) return InvalidArgument("the page table is not the space's");
  TS_ASSIGN_OR_RETURN(std::unique_ptr<EvictionPolicy> policy, NewEvictionPolicy(options.policy));
  if (!table) {
    TS_ASSIGN_OR_RETURN(PageTable fresh, PageTable::Create(l.pages));
    table.emplace(std::move(fresh));
  }
  TS_RETURN_IF_ERROR(queue->WakeOnReadable(space->wait_fd()));
  return std::make_unique<PagerImpl>(options, std::move(space), std::move(*table), std::move(policy), std::move(queue));
}

}  // namespace

Result<std::unique_ptr<Pager>> Pager::Serve(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                            std::unique_ptr<Space> space) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<PagerImpl> impl, MakePager(options, std::move(queue), std::move(space), {}));
  impl->StartThread();
  return std::unique_ptr<Pager>(new Pager(std::move(impl)));
}

Result<std::unique_ptr<Pager>> Pager::ServeFork(const PagerOptions& options, std::unique_ptr<IoQueue> queue,
                                                ForkedChild child) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<PagerImpl> impl,
                      MakePager(options, std::move(queue), std::move(child.space), std::move(child.table)));
  impl->AdoptResident();
  impl->StartThread();
  return std::unique_ptr<Pager>(new Pager(std::move(impl)));
}

Pager::Pager(std::unique_ptr<PagerImpl> impl) : impl_(std::move(impl)) {}
Pager::~Pager() = default;
void* Pager::base() const { return impl_->base(); }
size_t Pager::bytes() const { return impl_->bytes(); }
PagerStats Pager::Stats() const { return impl_->Stats(); }
bool Pager::finished() const { return impl_->finished(); }

}  // namespace tessera::vnode
