// Uffd: one userfaultfd and the few operations the pager needs from it, with
// every errno turned into a Status here.
//
// Debian 12's kernel headers predate UFFDIO_MOVE (Linux 6.8), so the ABI
// constants it needs are spelled out in uffd.cc; Open() asks the running kernel
// which features exist and fails with a message naming the fix when
// userfaultfd is unavailable or not permitted.
//
// Ownership: owns the descriptor. Thread-safety: the ioctls are safe from any
// thread (the kernel serialises them); ReadEvents from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tessera::vnode {

struct UffdFeatures {
  bool move = false;          // UFFDIO_MOVE (Linux 6.8)
  bool event_remove = false;  // madvise(DONTNEED/REMOVE) reported
  bool event_unmap = false;   // munmap reported
  bool event_remap = false;   // mremap reported
  bool event_fork = false;    // a fork()ed child's copy reported
  bool sigbus = false;        // missing pages raise SIGBUS instead of waiting
};

// A fault or a non-cooperative event, decoded.
struct UffdEvent {
  enum class Kind : uint8_t { kFault, kRemove, kUnmap, kRemap, kFork };
  Kind kind = Kind::kFault;
  bool write = false;   // kFault: the access was a write
  uint64_t address = 0; // kFault: the faulting address, page aligned; else start
  uint64_t end = 0;     // kRemove/kUnmap: end of the range
  uint64_t to = 0;      // kRemap: new address (length in end - address)
  int fork_fd = -1;     // kFork: the child's userfaultfd (the receiver owns it)
};

// Copy, ZeroPage and Move fail with this while a non-cooperative event
// (madvise, munmap) is pending: read the events, then try again.
inline bool AddressSpaceChanging(const Status& s) {
  return s.code() == Code::kUnavailable && s.message() == "address space changing";
}

// Move fails with this on a page still marked shared copy-on-write (after a
// fork) — even once the other process has exec'd or exited.
inline bool PageShared(const Status& s) {
  return s.code() == Code::kUnavailable && s.message() == "page shared copy-on-write";
}

class Uffd {
 public:
  // Opens a non-blocking userfaultfd asking for `wanted`; fails unless every
  // feature in `required` is granted.
  static Result<Uffd> Open(const UffdFeatures& wanted, const UffdFeatures& required);
  // A descriptor opened elsewhere (another process's, received over a
  // socket) with the features it was opened with.
  static Uffd Adopt(UniqueFd fd, const UffdFeatures& features) { return Uffd(std::move(fd), features); }
  Uffd(Uffd&&) = default;
  Uffd& operator=(Uffd&&) = default;

  int fd() const { return fd_.get(); }
  const UffdFeatures& features() const { return features_; }

  // Registers [addr, addr+len) for missing-page faults.
  Status RegisterMissing(void* addr, size_t len);
  Status Unregister(void* addr, size_t len);

  // Installs a copy of `src` at `dst` and wakes its waiters. AlreadyExists
  // when a page is already there (the waiters still need a Wake); then
  // *copied (if given) says how many bytes before it were installed.
  Status Copy(void* dst, const void* src, size_t len, size_t* copied = nullptr);
  // Maps the shared zero page at `dst` (read faults on never-written pages).
  Status ZeroPage(void* dst, size_t len);
  // Moves the pages at [src, src+len) to dst, which must be registered with
  // this descriptor; the source becomes missing. Returns the bytes moved: less
  // than len when a source page was missing (NotFound if the first was) or
  // busy (shared copy-on-write after a fork).
  Result<size_t> Move(void* dst, void* src, size_t len);
  Status Wake(void* addr, size_t len);

  // Reads whatever events are pending, without blocking; appends them.
  Status ReadEvents(std::vector<UffdEvent>* out);

 private:
  Uffd(UniqueFd fd, UffdFeatures features) : fd_(std::move(fd)), features_(features) {}
  UniqueFd fd_;
  UffdFeatures features_;
};

}  // namespace tessera::vnode
