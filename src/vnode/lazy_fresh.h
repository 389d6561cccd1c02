// LazyFresh: the pages of a program image that starts with none of its own —
// a process the program started that exec'd (a shell's child, a spawned
// worker) — in a store (image_store.h) made when first needed.
//
// Most such processes (sed, cat, a shell running a pipeline) never evict a
// page: they live and die inside their cache and need no region at all.
// Until the first I/O, the store is only a promise; the first Submit makes it
// (`make`, e.g. a region created at the controller) and from then on every
// queue is the made store's. A store that cannot be made yet fails that I/O
// (the pager retries it) and is tried again at the next.
//
// Ownership: owns the made store, with its queues. Thread-safety:
// thread-safe; each queue belongs to its pager's thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "vnode/image_store.h"

namespace tessera::vnode {

class LazyFresh final : public ImageStore {
 public:
  using Maker = std::function<Result<std::unique_ptr<ImageStore>>()>;
  explicit LazyFresh(Maker make) : state_(std::make_shared<State>(std::move(make))) {}

  // A queue that makes the store at its first I/O.
  std::unique_ptr<IoQueue> NewQueue() override;
  // Unmade: another promise (nothing was written to copy).
  Result<std::unique_ptr<ImageStore>> Clone() override;

  // The store, made now if it is not yet.
  Result<ImageStore*> Made() { return state_->Made(); }
  bool made() const { return state_->made(); }

  // Shared with the queues, which may outlive this object.
  class State {
   public:
    explicit State(Maker make) : make_(std::move(make)) {}
    Result<ImageStore*> Made();
    bool made() const;
    const Maker& maker() const { return make_; }

   private:
    const Maker make_;
    mutable std::mutex mu_;
    std::unique_ptr<ImageStore> store_;  // guarded by mu_; never replaced once set
  };

 private:
  const std::shared_ptr<State> state_;
};

}  // namespace tessera::vnode
