#include "vnode/space.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/check.h"
#include "vnode/staging.h"

namespace tessera::vnode {

Result<std::unique_ptr<Space>> Space::Fork(UniqueFd) {
  return InvalidArgument("this space does not serve forked children");
}

size_t SpaceLayout::staging_bytes() const { return size_t{staging_blocks} * Staging::kBlockSlots * page_size; }

Status MapRegistered(Uffd& uffd, size_t len, uint8_t** out, const char* what) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Status::FromErrno(errno, std::string("mmap ") + what);
  madvise(p, len, MADV_NOHUGEPAGE);
  if (Status s = uffd.RegisterMissing(p, len); !s.ok()) {
    munmap(p, len);
    return s.With(what);
  }
  *out = static_cast<uint8_t*>(p);
  return Status::Ok();
}

Result<MoveResult> MoveRun(Uffd& uffd, uint8_t* dst, uint8_t* src, uint32_t pages, size_t page_size) {
  CHECK(pages <= kMaxMovePages);
  MoveResult r;
  uint32_t done = 0;
  bool unshared = false;
  while (done < pages) {
    const size_t off = size_t{done} * page_size, len = size_t{pages - done} * page_size;
    Result<size_t> moved = uffd.Move(dst + off, src + off, len);
    if (!moved.ok() && AddressSpaceChanging(moved.status())) break;  // the rest stays
    if (!moved.ok() && PageShared(moved.status())) {
      if (!unshared) {
        // The page is present: no userfault can come of the write fault.
        madvise(src + off, page_size, MADV_POPULATE_WRITE);
        unshared = true;
      } else {
        ++done;  // stays; tried again in a later batch
        unshared = false;
      }
      continue;
    }
    if (!moved.ok() && moved.status().code() != Code::kNotFound) return moved.status();
    const uint32_t got = moved.ok() ? static_cast<uint32_t>(*moved / page_size) : 0;
    for (uint32_t k = done; k < done + got; ++k) r.moved |= uint64_t{1} << k;
    done += got;
    unshared = false;
    if (done < pages && got == 0) {
      r.missing |= uint64_t{1} << done;
      ++done;
    }
  }
  return r;
}

Result<std::unique_ptr<Space>> LocalSpace::Create(uint64_t pages, uint32_t staging_blocks, size_t page_size) {
  if (pages == 0) return InvalidArgument("nothing to map: zero pages");
  TS_ASSIGN_OR_RETURN(Uffd uffd, Uffd::Open(kSpaceFeatures, kSpaceFeatures));
  TS_ASSIGN_OR_RETURN(Uffd staging_uffd, Uffd::Open({.move = true, .sigbus = true}, {.move = true, .sigbus = true}));
  SpaceLayout l{.pages = pages, .staging_blocks = staging_blocks, .page_size = page_size};
  TS_RETURN_IF_ERROR(MapRegistered(uffd, l.bytes(), &l.base, "managed range"));
  if (Status s = MapRegistered(staging_uffd, l.staging_bytes(), &l.staging, "staging area"); !s.ok()) {
    munmap(l.base, l.bytes());
    return s;
  }
  return std::unique_ptr<Space>(new LocalSpace(l, std::move(uffd), std::move(staging_uffd)));
}

LocalSpace::~LocalSpace() {
  uffd_.Unregister(layout_.base, layout_.bytes()).IgnoreError();
  staging_uffd_.Unregister(layout_.staging, layout_.staging_bytes()).IgnoreError();
  munmap(layout_.base, layout_.bytes());
  munmap(layout_.staging, layout_.staging_bytes());
}

Status LocalSpace::ReadPages(std::span<uint8_t* const> from, std::span<uint8_t* const> to) {
  CHECK(from.size() == to.size());
  for (size_t i = 0; i < from.size(); ++i) std::memcpy(to[i], from[i], layout_.page_size);
  return Status::Ok();
}

Result<bool> LocalSpace::Drop(uint8_t* addr, size_t len, uint32_t) {
  if (madvise(addr, len, MADV_DONTNEED) != 0) return Status::FromErrno(errno, "drop staging block");
  return true;
}

Result<bool> LocalSpace::Evict(uint8_t* dst, uint8_t* src, uint32_t pages, uint32_t, MoveResult* result) {
  TS_ASSIGN_OR_RETURN(*result, MoveRun(staging_uffd_, dst, src, pages, layout_.page_size));
  return true;
}

Result<bool> LocalSpace::BringBack(uint8_t* dst, uint8_t* slot, uint8_t*) {
  // Moves into the managed range go through its own descriptor.
  Result<size_t> moved = uffd_.Move(dst, slot, layout_.page_size);
  if (!moved.ok()) return moved.status();
  return true;
}

void LocalSpace::Fail(const Status& why) {
  std::fprintf(stderr, "tessera: the pager cannot go on, stopping the program: %s\n", why.ToString().c_str());
  std::abort();
}

}  // namespace tessera::vnode
