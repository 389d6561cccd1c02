// Space: the address space a pager serves, as the pager reaches it: the
// managed range, the staging area, the userfaultfd(s) registered over them,
// and what the pager does there besides installing pages:
//  - move a run of pages into staging (UFFDIO_MOVE works only inside the
//    process that owns the memory);
//  - bring a staged page back;
//  - read staged pages;
//  - drop a drained staging block's memory.
// Moves and drops may complete later (TakeCompletions).
// Two kinds:
//  - LocalSpace: the pager's own process (tests, and programs linking the
//    library).
//  - RemoteSpace (remote_space.h): a program that `tessera run`'s agent
//    serves from outside, so the pager never runs inside other people's
//    programs.
// The pager never loads or stores through these addresses itself.
//
// In a RemoteSpace one userfaultfd covers both areas: a child the program
// forks inherits one registration for both (UFFD_FEATURE_EVENT_FORK), and
// the child's space comes from its parent's (Fork).
//
// Ownership: owns the userfaultfd, and whatever else each kind needs.
// Thread-safety: the pager's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vnode/uffd.h"

namespace tessera::vnode {

struct SpaceLayout {
  uint8_t* base = nullptr;  // the managed range: pages * page_size bytes
  uint64_t pages = 0;
  uint8_t* staging = nullptr;  // staging_blocks * Staging::kBlockSlots pages
  uint32_t staging_blocks = 0;
  size_t page_size = 4096;

  size_t bytes() const { return pages * page_size; }
  size_t staging_bytes() const;
  // A remote space's staging area ends with two more pages (remote_space.h):
  // the beacon, always mapped, says whether the program's memory still
  // exists; the doorbell, never mapped in the program that joined, gives a
  // forked child the nonce it joins with.
  uint8_t* beacon() const { return staging + staging_bytes(); }
  uint8_t* doorbell() const { return beacon() + page_size; }
  size_t staging_area_bytes() const { return staging_bytes() + 2 * page_size; }
};

// The most pages one move asks for (a MoveResult has a bit per page).
constexpr uint32_t kMaxMovePages = 64;

// What became of a run of up to kMaxMovePages pages asked to move: bit i for page i.
// Pages neither moved nor missing stay where they are (busy: retry later).
struct MoveResult {
  uint64_t moved = 0;
  uint64_t missing = 0;  // nothing was mapped there (dropped by the program unreported)
};

// A move or a drop done after the call that asked for it.
struct SpaceCompletion {
  enum class Kind : uint8_t { kDrop, kMove } kind = Kind::kDrop;
  uint32_t token = 0;
  MoveResult move;
};

// Moves `pages` contiguous pages from src to dst (registered with `uffd`),
// in this process. A page a fork left shared is made ours with a write fault
// the kernel makes (its bytes unchanged) and tried once more.
Result<MoveResult> MoveRun(Uffd& uffd, uint8_t* dst, uint8_t* src, uint32_t pages, size_t page_size);

// The features every space's userfaultfd has; a remote space's also
// reports forks, so that a forked child's memory is served too.
inline constexpr UffdFeatures kSpaceFeatures{.move = true, .event_remove = true, .event_unmap = true};
inline constexpr UffdFeatures kRemoteSpaceFeatures{
    .move = true, .event_remove = true, .event_unmap = true, .event_fork = true};

class Space {
 public:
  virtual ~Space() = default;

  const SpaceLayout& layout() const { return layout_; }
  // Registered over the managed range.
  Uffd& uffd() { return uffd_; }
  // Registered over the staging area: moves and copies into it go here.
  virtual Uffd& staging_uffd() = 0;
  // Pages can be moved out (Evict) and staging dropped. A space that cannot
  // (yet: a forked child before it joins) is served without eviction.
  virtual bool can_evict() const { return true; }
  // The space of a child the program forked, from the userfaultfd the fork
  // event carried.
  virtual Result<std::unique_ptr<Space>> Fork(UniqueFd child_uffd);
  // A fault outside the range and the staging slots: true if the space
  // served it (a forked child's doorbell).
  virtual Result<bool> ServeOutside(uint64_t) { return false; }

  // Readable when a fault, an event or a completion is pending.
  virtual int wait_fd() const = 0;
  // Copies the pages at from[i] (addresses in the space) to to[i] (ours).
  virtual Status ReadPages(std::span<uint8_t* const> from, std::span<uint8_t* const> to) = 0;
  // Moves `pages` (<= 64) contiguous pages of the range at src into the
  // staging slots at dst. True: done, *result says how; false: a kMove
  // completion with `token` will.
  virtual Result<bool> Evict(uint8_t* dst, uint8_t* src, uint32_t pages, uint32_t token, MoveResult* result) = 0;
  // Puts the staged page at `slot` back at `dst` (waking its waiters); may
  // use `scratch`, a page of ours. True: the slot's memory went with it;
  // false: it was copied. AddressSpaceChanging: not now.
  virtual Result<bool> BringBack(uint8_t* dst, uint8_t* slot, uint8_t* scratch) = 0;
  // BringBack copies (the page then costs a second page until its block is
  // dropped).
  virtual bool bring_back_copies() const = 0;
  // Frees the memory behind [addr, addr+len) of the staging area. True: done
  // now; false: a kDrop completion with `token` will say so.
  virtual Result<bool> Drop(uint8_t* addr, size_t len, uint32_t token) = 0;
  // Appends what completed since the last call. Unavailable once the program
  // is gone (exited, or exec'd a new image).
  virtual Status TakeCompletions(std::vector<SpaceCompletion>* out) = 0;
  // wait_fd() was ready, yet there was nothing to take: something keeps it
  // ready (a socket that hung up). Finds out now, rather than letting the
  // pager spin until it asks anyway: Unavailable if the program is gone.
  virtual Status OnQuietWake() { return Status::Ok(); }
  // Every fork event read so far is settled (the child's pages are in the
  // pool or resident in the child): lets a parent waiting to hear that go on
  // (kForked, agent_protocol.h).
  virtual Status ConfirmForks() { return Status::Ok(); }
  // After an error: true if it came from the program having gone away.
  virtual bool Gone() = 0;
  // The program cannot be served any more: says why and stops it.
  virtual void Fail(const Status& why) = 0;

 protected:
  Space(const SpaceLayout& layout, Uffd uffd) : layout_(layout), uffd_(std::move(uffd)) {}

  SpaceLayout layout_;
  Uffd uffd_;
};

// The pager's own process: maps both areas and registers them. The staging
// area has a userfaultfd of its own in SIGBUS mode, without EVENT_REMOVE: the
// pager's thread drops its blocks itself, and an madvise reported to the
// userfaultfd that thread reads would wait for it forever.
class LocalSpace final : public Space {
 public:
  static Result<std::unique_ptr<Space>> Create(uint64_t pages, uint32_t staging_blocks, size_t page_size);
  ~LocalSpace() override;

  Uffd& staging_uffd() override { return staging_uffd_; }
  int wait_fd() const override { return uffd_.fd(); }
  Status ReadPages(std::span<uint8_t* const> from, std::span<uint8_t* const> to) override;
  Result<bool> Evict(uint8_t* dst, uint8_t* src, uint32_t pages, uint32_t token, MoveResult* result) override;
  Result<bool> BringBack(uint8_t* dst, uint8_t* slot, uint8_t* scratch) override;
  bool bring_back_copies() const override { return false; }
  Result<bool> Drop(uint8_t* addr, size_t len, uint32_t token) override;
  Status TakeCompletions(std::vector<SpaceCompletion>*) override { return Status::Ok(); }
  bool Gone() override { return false; }
  void Fail(const Status& why) override;

 private:
  LocalSpace(const SpaceLayout& layout, Uffd uffd, Uffd staging_uffd)
      : Space(layout, std::move(uffd)), staging_uffd_(std::move(staging_uffd)) {}

  Uffd staging_uffd_;
};

// Maps [*out, *out+len) anonymous, private, without huge pages (moves and
// faults work in 4 KiB pages) and registers it with `uffd`.
Status MapRegistered(Uffd& uffd, size_t len, uint8_t** out, const char* what);

}  // namespace tessera::vnode
