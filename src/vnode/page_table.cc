#include "vnode/page_table.h"

#include <isa-l/crc64.h>
#include <sys/mman.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace tessera::vnode {

const char* PageStateName(PageState s) {
  switch (s) {
    case PageState::kZero: return "zero";
    case PageState::kRemote: return "remote";
    case PageState::kFetching: return "fetching";
    case PageState::kResident: return "resident";
    case PageState::kStaged: return "staged";
    case PageState::kWriteback: return "writeback";
    case PageState::kEvicting: return "evicting";
  }
  return "?";
}

Result<PageTable> PageTable::Create(uint64_t pages) {
  // Zero-filled anonymous memory is a table of kZero entries.
  static_assert(static_cast<int>(PageState::kZero) == 0);
  void* p = mmap(nullptr, pages * sizeof(PageEntry), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Status::FromErrno(errno, "mmap page table");
  return PageTable(static_cast<PageEntry*>(p), pages);
}

Result<PageTable> PageTable::ForkCopy() const {
  TS_ASSIGN_OR_RETURN(PageTable t, Create(pages_));
  for (uint64_t p = 0; p < pages_; ++p) {
    const PageEntry& e = entries_[p];
    if (e.state == PageState::kZero) continue;  // untouched entries stay unwritten: no memory
    PageEntry& c = t.entries_[p];
    if (e.state == PageState::kResident) {
      c.state = PageState::kResident;
      c.crc = e.crc;
      c.flags = e.flags & kForceWrite;
    } else {
      c.state = PageState::kRemote;
    }
  }
  return t;
}

PageTable::PageTable(PageTable&& o) noexcept
    : entries_(std::exchange(o.entries_, nullptr)), pages_(std::exchange(o.pages_, 0)) {}

PageTable::~PageTable() {
  if (entries_ != nullptr) munmap(entries_, pages_ * sizeof(PageEntry));
}

uint64_t PageCrc(const void* data, size_t len) {
  return crc64_ecma_refl(0, static_cast<const unsigned char*>(data), len);
}

uint64_t ZeroPageCrc(size_t len) {
  std::vector<unsigned char> zeros(len, 0);
  return PageCrc(zeros.data(), len);
}

}  // namespace tessera::vnode
