// LazyClone: a forked child's pages — a clone of its parent's (ImageStore,
// image_store.h) made when first needed, not at the fork: by the child's first I/O,
// or by the parent's first write after the fork (which must not reach pages
// the child has yet to copy). A child that execs or exits before either
// costs no clone at all: fork+exec stays cheap.
//
// The queues the agent gives pagers enforce this: a LazyQueue opens the
// child's real queue on its first I/O (making the clone), and a GuardedQueue
// makes every clone still pending from its image before it lets a write
// through — unless the child's memory is gone already (it exec'd or exited:
// asked of its beacon page, as the space does). A clone that cannot be made
// is abandoned for good (the child's I/O then fails, and its faults wait),
// never made later from pages the parent has changed since.
//
// Ownership: a LazyClone holds its parent's store until the clone is made or
// abandoned, and owns the clone. Thread-safety: thread-safe; each queue
// belongs to its pager's thread.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "common/unique_fd.h"
#include "vnode/image_store.h"
#include "vnode/uffd.h"

namespace tessera::vnode {

class LazyClone final : public ImageStore, public std::enable_shared_from_this<LazyClone> {
 public:
  // `child_uffd` (a copy of the child's) and `beacon` tell whether the
  // child's memory still exists.
  LazyClone(std::shared_ptr<ImageStore> parent, UniqueFd child_uffd, uint8_t* beacon, size_t page_size)
      : parent_(std::move(parent)), child_(Uffd::Adopt(std::move(child_uffd), {})), beacon_(beacon),
        page_size_(page_size) {}

  // A queue that makes the clone on its first I/O.
  std::unique_ptr<IoQueue> NewQueue() override;
  Result<std::unique_ptr<ImageStore>> Clone() override;

  // The clone, made now if it is not yet; its error if it could not be.
  Result<ImageStore*> Made();
  // The child's memory is gone: it will never need the clone.
  bool ChildGone();

 private:
  mutable std::mutex mu_;
  std::shared_ptr<ImageStore> parent_;  // until made or abandoned
  Uffd child_;
  uint8_t* const beacon_;
  const size_t page_size_;
  std::unique_ptr<ImageStore> clone_;
  Status failed_;
};

// The clones pending from one image (its children not yet copied).
class ForkGuard {
 public:
  void Add(const std::shared_ptr<LazyClone>& child);
  // Makes every pending clone whose child is still served.
  void MakePending();

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<LazyClone>> pending_;
};

// Makes `guard`'s pending clones before it passes a write to `inner`.
std::unique_ptr<IoQueue> GuardedQueue(std::unique_ptr<IoQueue> inner, std::shared_ptr<ForkGuard> guard);

}  // namespace tessera::vnode
