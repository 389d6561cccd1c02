#include "vnode/lazy_fresh.h"

#include <poll.h>

#include <cerrno>

namespace tessera::vnode {
namespace {

// Forwards to the made store's queue once the first I/O made it; before
// that it has nothing in flight.
class DeferredQueue final : public IoQueue {
 public:
  explicit DeferredQueue(std::shared_ptr<LazyFresh::State> fresh) : fresh_(std::move(fresh)) {}

  Status Submit(std::span<const PageIo> ios) override {
    if (inner_ == nullptr) {
      TS_ASSIGN_OR_RETURN(ImageStore * store, fresh_->Made());
      std::unique_ptr<IoQueue> q = store->NewQueue();
      if (wake_fd_ >= 0) TS_RETURN_IF_ERROR(q->WakeOnReadable(wake_fd_));
      inner_ = std::move(q);
    }
    return inner_->Submit(ios);
  }
  Status Flush() override { return inner_ != nullptr ? inner_->Flush() : Status::Ok(); }
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override {
    if (inner_ != nullptr) return inner_->Reap(out, min, timeout_ms);
    if (min == 0) return size_t{0};
    // Nothing can complete: wait as a queue would, until the wake-up
    // descriptor has news or the time is up.
    pollfd p{wake_fd_, POLLIN, 0};
    int n = poll(&p, wake_fd_ >= 0 ? 1 : 0, timeout_ms);
    if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
    if (n > 0) return size_t{0};
    return TimedOut("no page I/O in flight");
  }
  size_t outstanding() const override { return inner_ != nullptr ? inner_->outstanding() : 0; }
  Status WakeOnReadable(int fd) override {
    wake_fd_ = fd;
    return inner_ != nullptr ? inner_->WakeOnReadable(fd) : Status::Ok();
  }

 private:
  const std::shared_ptr<LazyFresh::State> fresh_;
  std::unique_ptr<IoQueue> inner_;
  int wake_fd_ = -1;
};

}  // namespace

std::unique_ptr<IoQueue> LazyFresh::NewQueue() { return std::make_unique<DeferredQueue>(state_); }

Result<ImageStore*> LazyFresh::State::Made() {
  std::lock_guard lk(mu_);
  if (store_ == nullptr) {
    TS_ASSIGN_OR_RETURN(store_, make_());
  }
  return store_.get();
}

bool LazyFresh::State::made() const {
  std::lock_guard lk(mu_);
  return store_ != nullptr;
}

Result<std::unique_ptr<ImageStore>> LazyFresh::Clone() {
  // The caller writes nothing meanwhile: unmade now, unmade throughout.
  if (!made()) return std::unique_ptr<ImageStore>(new LazyFresh(state_->maker()));
  TS_ASSIGN_OR_RETURN(ImageStore * store, Made());
  return store->Clone();
}

}  // namespace tessera::vnode
