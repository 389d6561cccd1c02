#include "vnode/lazy_clone.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace tessera::vnode {
namespace {

bool AllReads(std::span<const PageIo> ios) {
  return std::all_of(ios.begin(), ios.end(), [](const PageIo& io) { return io.kind == PageIo::Kind::kRead; });
}

// A child's queue. Until the clone is made (or due), one-page writes are kept
// by the LazyClone and reads go to the kept page or to the parent's pages
// (`borrowed_`), completions of the first two waiting in `stash_`; then
// everything goes to the clone (`queue_`). Reads of the parent and of the
// clone are never in flight together: the first I/O on the clone waits out
// the reads of the parent's pages, and keeps their completions for the next
// Reap. A read whose pages are all kept is served from them; one with some
// kept takes their bytes along and lays them over the parent's when it
// completes: the kept pages may be gone into the clone by then. (The pager
// writes one page at a time; longer writes make the clone.)
class LazyQueue final : public IoQueue {
 public:
  explicit LazyQueue(std::shared_ptr<LazyClone> clone) : clone_(std::move(clone)) {}
  ~LazyQueue() override {
    borrowed_.reset();
    clone_->Release(counted_);
  }

  Status Submit(std::span<const PageIo> ios) override {
    if (!queue_ && ios.size() == 1) {
      TS_ASSIGN_OR_RETURN(bool done, SubmitBeforeCopy(ios[0]));
      if (done) return Status::Ok();
    }
    TS_RETURN_IF_ERROR(Open());
    return queue_->Submit(ios);
  }
  Status Flush() override {
    if (borrowed_) TS_RETURN_IF_ERROR(borrowed_->Flush());
    return queue_ ? queue_->Flush() : Status::Ok();
  }
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override {
    const size_t kept = stash_.size();
    out->insert(out->end(), stash_.begin(), stash_.end());
    stash_.clear();
    const size_t want = min > kept ? min - kept : 0;
    IoQueue* q = queue_ ? queue_.get() : borrowed_.get();
    if (q == nullptr) return kept;  // nothing was ever submitted
    const size_t before = out->size();
    Result<size_t> n = q->Reap(out, want, timeout_ms);
    if (q == borrowed_.get()) Overlay(*out, before);
    Recount();
    if (!n.ok()) return kept > 0 ? Result<size_t>(kept) : n;
    return kept + *n;
  }
  size_t outstanding() const override {
    return stash_.size() + (borrowed_ ? borrowed_->outstanding() : 0) + (queue_ ? queue_->outstanding() : 0);
  }
  Status WakeOnReadable(int fd) override {
    wake_fd_ = fd;
    if (borrowed_) TS_RETURN_IF_ERROR(borrowed_->WakeOnReadable(fd));
    return queue_ ? queue_->WakeOnReadable(fd) : Status::Ok();
  }

 private:
  // false: the I/O is the clone's to do.
  Result<bool> SubmitBeforeCopy(const PageIo& io) {
    if (io.kind == PageIo::Kind::kZero) {
      // A release: the pager never reads these pages again, and the copy
      // (if one is ever made) may hold anything there.
      if (!clone_->Forget(io.first_page, io.page_count)) return false;
      stash_.push_back({io.user_data, Status::Ok()});
      return true;
    }
    if (io.kind == PageIo::Kind::kWrite) {
      if (io.page_count != 1 || !clone_->Keep(io.first_page, io.buffer)) return false;
      stash_.push_back({io.user_data, Status::Ok()});
      return true;
    }
    // A read: kept pages come from here, the others from the parent's.
    LazyClone::KeptPages kept = clone_->KeptIn(io.first_page, io.page_count);
    if (kept.size() == io.page_count) {
      Lay(io, kept);
      stash_.push_back({io.user_data, Status::Ok()});
      return true;
    }
    std::shared_ptr<ImageStore> parent = clone_->Borrow(1);
    if (!parent) return false;
    counted_ += 1;
    if (!kept.empty()) overlays_[io.user_data] = {io, std::move(kept)};
    Status s = SubmitBorrowed(std::move(parent), io);
    Recount();
    TS_RETURN_IF_ERROR(s);
    return true;
  }
  Status SubmitBorrowed(std::shared_ptr<ImageStore> parent, const PageIo& io) {
    if (!borrowed_) {
      std::unique_ptr<IoQueue> q = parent->NewQueue();
      TS_RETURN_IF_ERROR(q->WakeOnReadable(wake_fd_));
      borrowed_ = std::move(q);
      parent_ = std::move(parent);
    }
    return borrowed_->Submit({&io, 1});
  }
  // Copies `kept` into the read's buffer.
  static void Lay(const PageIo& io, const LazyClone::KeptPages& kept) {
    for (const auto& [page, bytes] : kept) {
      std::memcpy(static_cast<uint8_t*>(io.buffer) + (page - io.first_page) * bytes.size(), bytes.data(),
                  bytes.size());
    }
  }
  // Lays kept pages over the reads of the parent's pages in out[from...].
  void Overlay(std::vector<Completion>& out, size_t from) {
    if (overlays_.empty()) return;
    for (size_t i = from; i < out.size(); ++i) {
      auto it = overlays_.find(out[i].user_data);
      if (it == overlays_.end()) continue;
      if (out[i].status.ok()) Lay(it->second.io, it->second.kept);
      overlays_.erase(it);
    }
  }
  // Tells the LazyClone of the parent's reads that ended.
  void Recount() {
    const size_t now = borrowed_ ? borrowed_->outstanding() : 0;
    if (now < counted_) clone_->Release(counted_ - now);
    counted_ = std::min(counted_, now);
  }
  Status Open() {
    if (queue_) return Status::Ok();
    TS_ASSIGN_OR_RETURN(ImageStore* store, clone_->Made());
    TS_RETURN_IF_ERROR(EndBorrowing());
    std::unique_ptr<IoQueue> q = store->NewQueue();
    TS_RETURN_IF_ERROR(q->WakeOnReadable(wake_fd_));
    queue_ = std::move(q);
    return Status::Ok();
  }
  Status EndBorrowing() {
    if (!borrowed_) return Status::Ok();
    TS_RETURN_IF_ERROR(borrowed_->WakeOnReadable(-1));
    while (borrowed_->outstanding() > 0) {
      const size_t before = stash_.size();
      Result<size_t> n = borrowed_->Reap(&stash_, borrowed_->outstanding(), 1000);
      Overlay(stash_, before);
      Recount();
      if (!n.ok() && n.status().code() != Code::kTimedOut) return n.status();
    }
    borrowed_.reset();
    parent_.reset();
    return Status::Ok();
  }

  std::shared_ptr<LazyClone> clone_;
  std::shared_ptr<ImageStore> parent_;  // while borrowed_ reads it
  std::unique_ptr<IoQueue> borrowed_;
  std::unique_ptr<IoQueue> queue_;
  std::vector<Completion> stash_;  // done here or by borrowed_, not yet reaped
  struct Overlaid {
    PageIo io;
    LazyClone::KeptPages kept;
  };
  std::unordered_map<uint64_t, Overlaid> overlays_;  // by user_data: borrowed reads with kept pages
  size_t counted_ = 0;             // borrowed_'s reads the LazyClone counts
  int wake_fd_ = -1;
};

class Guarded final : public IoQueue {
 public:
  Guarded(std::unique_ptr<IoQueue> inner, std::shared_ptr<ForkGuard> guard)
      : inner_(std::move(inner)), guard_(std::move(guard)) {}

  Status Submit(std::span<const PageIo> ios) override {
    if (!AllReads(ios)) guard_->MakePending();
    return inner_->Submit(ios);
  }
  Status Flush() override { return inner_->Flush(); }
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override {
    return inner_->Reap(out, min, timeout_ms);
  }
  size_t outstanding() const override { return inner_->outstanding(); }
  Status WakeOnReadable(int fd) override { return inner_->WakeOnReadable(fd); }

 private:
  std::unique_ptr<IoQueue> inner_;
  std::shared_ptr<ForkGuard> guard_;
};

}  // namespace

std::unique_ptr<IoQueue> LazyClone::NewQueue() { return std::make_unique<LazyQueue>(shared_from_this()); }

Result<std::unique_ptr<ImageStore>> LazyClone::Clone() {
  TS_ASSIGN_OR_RETURN(ImageStore* store, Made());
  return store->Clone();
}

Result<ImageStore*> LazyClone::Made() {
  std::lock_guard lk(mu_);
  if (clone_) return clone_.get();
  if (!failed_.ok()) return failed_;
  Result<std::unique_ptr<ImageStore>> c = parent_->Clone();
  parent_.reset();
  Status s = c.ok() ? WriteKept(**c) : c.status();
  kept_.clear();
  if (!s.ok()) {
    failed_ = s.With("copy a forked child's pages");
    std::fprintf(stderr, "tessera: a forked child cannot be served, and will wait on its pool memory: %s\n",
                 failed_.ToString().c_str());
    return failed_;
  }
  clone_ = std::move(*c);
  return clone_.get();
}

Status LazyClone::WriteKept(ImageStore& store) {
  if (kept_.empty()) return Status::Ok();
  std::unique_ptr<IoQueue> q = store.NewQueue();
  std::vector<PageIo> ios;
  for (auto& [page, bytes] : kept_) ios.push_back({.kind = PageIo::Kind::kWrite, .first_page = page, .buffer = bytes.data()});
  TS_RETURN_IF_ERROR(q->Submit(ios));
  std::vector<Completion> done;
  while (q->outstanding() > 0) {
    Result<size_t> n = q->Reap(&done, q->outstanding(), 1000);
    if (!n.ok() && n.status().code() != Code::kTimedOut) return n.status();
  }
  for (const Completion& c : done) TS_RETURN_IF_ERROR(c.status);
  return Status::Ok();
}

bool LazyClone::ChildGone() {
  Status s = child_.ZeroPage(beacon_, page_size_);
  return !s.ok() && s.code() != Code::kAlreadyExists && !AddressSpaceChanging(s);
}

void LazyClone::BeforeParentWrites() {
  {
    std::lock_guard lk(mu_);
    parent_writes_ = true;
  }
  if (ChildGone()) {
    std::lock_guard lk(mu_);
    if (!clone_ && failed_.ok()) failed_ = Cancelled("the forked child's memory is gone");
    parent_.reset();
    kept_.clear();
    return;  // its reads in flight, if any, will never be installed
  }
  Made().status().IgnoreError();  // a clone that fails is abandoned: Made says so to the child from now on
  std::unique_lock lk(mu_);
  released_.wait(lk, [this] { return borrowed_ == 0; });
}

std::shared_ptr<ImageStore> LazyClone::Borrow(size_t ios) {
  std::lock_guard lk(mu_);
  if (!Lending()) return nullptr;
  borrowed_ += ios;
  return parent_;
}

bool LazyClone::Keep(uint64_t page, const void* data) {
  std::lock_guard lk(mu_);
  if (!Lending()) return false;
  auto it = kept_.find(page);
  if (it == kept_.end()) {
    if (kept_.size() >= keep_pages_) return false;
    it = kept_.emplace(page, std::vector<uint8_t>(page_size_)).first;
  }
  std::memcpy(it->second.data(), data, page_size_);
  return true;
}

bool LazyClone::Forget(uint64_t first_page, uint32_t pages) {
  std::lock_guard lk(mu_);
  if (!Lending()) return false;
  if (pages < kept_.size()) {
    for (uint64_t p = first_page; p < first_page + pages; ++p) kept_.erase(p);
  } else {
    std::erase_if(kept_, [&](const auto& e) { return e.first >= first_page && e.first - first_page < pages; });
  }
  return true;
}

LazyClone::KeptPages LazyClone::KeptIn(uint64_t first_page, uint32_t pages) {
  std::lock_guard lk(mu_);
  KeptPages out;
  if (kept_.empty()) return out;
  for (uint64_t p = first_page; p < first_page + pages; ++p) {
    auto it = kept_.find(p);
    if (it != kept_.end()) out.emplace_back(p, it->second);
  }
  return out;
}

bool LazyClone::Lends() const {
  std::lock_guard lk(mu_);
  return Lending();
}

void LazyClone::Release(size_t ios) {
  if (ios == 0) return;
  std::lock_guard lk(mu_);
  borrowed_ -= ios;
  if (borrowed_ == 0) released_.notify_all();
}

void ForkGuard::Add(const std::shared_ptr<LazyClone>& child) {
  std::lock_guard lk(mu_);
  std::erase_if(pending_, [](const std::weak_ptr<LazyClone>& c) { return c.expired(); });
  pending_.push_back(child);
}

bool ForkGuard::Lending() {
  std::lock_guard lk(mu_);
  for (const auto& weak : pending_) {
    if (std::shared_ptr<LazyClone> c = weak.lock(); c && c->Lends()) return true;
  }
  return false;
}

void ForkGuard::MakePending() {
  std::vector<std::weak_ptr<LazyClone>> pending;
  {
    std::lock_guard lk(mu_);
    if (pending_.empty()) return;
    pending.swap(pending_);
  }
  for (const auto& weak : pending) {
    if (std::shared_ptr<LazyClone> c = weak.lock()) c->BeforeParentWrites();
  }
}

std::unique_ptr<IoQueue> GuardedQueue(std::unique_ptr<IoQueue> inner, std::shared_ptr<ForkGuard> guard) {
  return std::make_unique<Guarded>(std::move(inner), std::move(guard));
}

}  // namespace tessera::vnode
