// LazyClone: a forked child's pages — a clone of its parent's (ImageStore,
// image_store.h) made when first needed, not at the fork.
//
// Until then the child reads its parent's pages: they are exactly what it
// had at the fork for as long as the parent writes none. The pages the child
// writes meanwhile (evicting ones it inherited dirty) are kept here, up to
// `keep_pages`; the pages it releases (discarded: kZero) are simply
// forgotten, for it never reads them again. Before the parent's first write
// after the fork (a GuardedQueue sees it), the clone is made — unless the
// child's memory is gone by then (it exec'd or exited: asked of its beacon
// page, as the space does) — and the write waits until the reads the child
// has in flight on the parent's pages have ended. The clone is made too when
// the child writes more than `keep_pages`, or forks. Once made, the kept
// pages are written to it and the child uses only it. So a child that reads
// and writes a little, then execs or exits before its parent writes, costs
// no clone at all: fork+exec stays cheap even when the exec touches pages the
// parent had evicted (python's does).
//
// A clone that cannot be made is abandoned for good (the child's I/O then
// fails, and its faults wait), never made later from pages the parent has
// changed since.
//
// Ownership: a LazyClone holds its parent's store until the clone is made or
// abandoned (a child's queue holds it too while it reads through it), and
// owns the clone and the kept pages. Thread-safety: thread-safe; each queue
// belongs to its pager's thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/unique_fd.h"
#include "vnode/image_store.h"
#include "vnode/uffd.h"

namespace tessera::vnode {

class LazyClone final : public ImageStore, public std::enable_shared_from_this<LazyClone> {
 public:
  // `child_uffd` (a copy of the child's) and `beacon` tell whether the
  // child's memory still exists.
  LazyClone(std::shared_ptr<ImageStore> parent, UniqueFd child_uffd, uint8_t* beacon, size_t page_size,
            size_t keep_pages)
      : parent_(std::move(parent)), child_(Uffd::Adopt(std::move(child_uffd), {})), beacon_(beacon),
        page_size_(page_size), keep_pages_(keep_pages) {}

  // A queue that reads the parent's pages while it may, and the clone after.
  std::unique_ptr<IoQueue> NewQueue() override;
  Result<std::unique_ptr<ImageStore>> Clone() override;
  Status BeforeFork() override { return Made().status(); }

  // The clone, made now if it is not yet; its error if it could not be.
  Result<ImageStore*> Made();
  // The child's memory is gone: it will never need the clone.
  bool ChildGone();
  // Called before the parent's first write after the fork: makes the clone if
  // the child still lives (else abandons it), then waits until none of the
  // child's reads of the parent's pages is in flight.
  void BeforeParentWrites();

  // For the child's queues: `ios` more reads of the parent's pages may start
  // (the parent's store, counted in flight until Release), or null — read the
  // clone.
  std::shared_ptr<ImageStore> Borrow(size_t ios);
  // The child still reads the parent's pages: a write of the parent's now
  // would cost a clone.
  bool Lends() const;
  void Release(size_t ios);
  // Keeps the child's write of one page here: false if the clone is to take
  // it (made, due, or the keep is full).
  bool Keep(uint64_t page, const void* data);
  // The child released these pages (it discarded them): drops what is kept
  // of them. False if the clone is to take the release.
  bool Forget(uint64_t first_page, uint32_t pages);
  // The kept pages among [first_page, first_page + pages), with their bytes.
  using KeptPages = std::vector<std::pair<uint64_t, std::vector<uint8_t>>>;
  KeptPages KeptIn(uint64_t first_page, uint32_t pages);

 private:
  mutable std::mutex mu_;
  std::condition_variable released_;
  std::shared_ptr<ImageStore> parent_;  // until made or abandoned
  Uffd child_;
  uint8_t* const beacon_;
  const size_t page_size_;
  // The child still uses the parent's pages and the kept ones (no clone is
  // made, due or abandoned). Called under mu_.
  bool Lending() const { return !parent_writes_ && !clone_ && failed_.ok() && parent_; }
  // The kept pages, written to `store` (the new clone). Called under mu_.
  Status WriteKept(ImageStore& store);

  const size_t keep_pages_;
  std::unique_ptr<ImageStore> clone_;
  Status failed_;
  std::unordered_map<uint64_t, std::vector<uint8_t>> kept_;
  bool parent_writes_ = false;  // no more reads of the parent's pages start
  size_t borrowed_ = 0;         // the child's reads of them in flight
};

// The clones pending from one image (its children not yet copied).
class ForkGuard {
 public:
  void Add(const std::shared_ptr<LazyClone>& child);
  // Readies every pending clone for a write to the image (BeforeParentWrites).
  void MakePending();
  // Some child still reads the image's pages (LazyClone::Lends): a write
  // to them now costs a copy of the image.
  bool Lending();

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<LazyClone>> pending_;
};

// Makes `guard`'s pending clones before it passes a write to `inner`.
std::unique_ptr<IoQueue> GuardedQueue(std::unique_ptr<IoQueue> inner, std::shared_ptr<ForkGuard> guard);

}  // namespace tessera::vnode
