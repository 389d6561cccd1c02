#include "vnode/lazy_clone.h"

#include <cstdio>

namespace tessera::vnode {
namespace {

class LazyQueue final : public IoQueue {
 public:
  explicit LazyQueue(std::shared_ptr<LazyClone> clone) : clone_(std::move(clone)) {}

  Status Submit(std::span<const PageIo> ios) override {
    TS_RETURN_IF_ERROR(Open());
    return queue_->Submit(ios);
  }
  Status Flush() override { return queue_ ? queue_->Flush() : Status::Ok(); }
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override {
    if (!queue_) return size_t{0};  // nothing was ever submitted
    return queue_->Reap(out, min, timeout_ms);
  }
  size_t outstanding() const override { return queue_ ? queue_->outstanding() : 0; }
  Status WakeOnReadable(int fd) override {
    wake_fd_ = fd;
    return queue_ ? queue_->WakeOnReadable(fd) : Status::Ok();
  }

 private:
  Status Open() {
    if (queue_) return Status::Ok();
    TS_ASSIGN_OR_RETURN(ImageStore* store, clone_->Made());
    std::unique_ptr<IoQueue> q = store->NewQueue();
    TS_RETURN_IF_ERROR(q->WakeOnReadable(wake_fd_));
    queue_ = std::move(q);
    return Status::Ok();
  }

  std::shared_ptr<LazyClone> clone_;
  std::unique_ptr<IoQueue> queue_;
  int wake_fd_ = -1;
};

class Guarded final : public IoQueue {
 public:
  Guarded(std::unique_ptr<IoQueue> inner, std::shared_ptr<ForkGuard> guard)
      : inner_(std::move(inner)), guard_(std::move(guard)) {}

  Status Submit(std::span<const PageIo> ios) override {
    for (const PageIo& io : ios) {
      if (io.kind == PageIo::Kind::kWrite) {
        guard_->MakePending();
        break;
      }
    }
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
  if (!c.ok()) {
    failed_ = c.status().With("copy a forked child's pages");
    std::fprintf(stderr, "tessera: a forked child cannot be served, and will wait on its pool memory: %s\n",
                 failed_.ToString().c_str());
    return failed_;
  }
  clone_ = std::move(*c);
  return clone_.get();
}

bool LazyClone::ChildGone() {
  Status s = child_.ZeroPage(beacon_, page_size_);
  return !s.ok() && s.code() != Code::kAlreadyExists && !AddressSpaceChanging(s);
}

void ForkGuard::Add(const std::shared_ptr<LazyClone>& child) {
  std::lock_guard lk(mu_);
  pending_.push_back(child);
}

void ForkGuard::MakePending() {
  std::vector<std::weak_ptr<LazyClone>> pending;
  {
    std::lock_guard lk(mu_);
    if (pending_.empty()) return;
    pending.swap(pending_);
  }
  // A clone that fails is abandoned (Made says so to its child from now on).
  for (const auto& weak : pending) {
    std::shared_ptr<LazyClone> c = weak.lock();
    if (c && !c->ChildGone()) c->Made().status().IgnoreError();
  }
}

std::unique_ptr<IoQueue> GuardedQueue(std::unique_ptr<IoQueue> inner, std::shared_ptr<ForkGuard> guard) {
  return std::make_unique<Guarded>(std::move(inner), std::move(guard));
}

}  // namespace tessera::vnode
