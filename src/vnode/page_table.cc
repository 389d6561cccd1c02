#include "vnode/page_table.h"

#include <isa-l/crc64.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

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

namespace {

// Whether each page of [addr, addr + pages * page) ever held data: mapped or
// swapped out, per /proc/self/pagemap (bits 63 and 62). A page that is
// neither was never written and reads as zeros. False if it cannot be read.
bool EverWritten(const void* addr, size_t pages, size_t page, std::vector<bool>* out) {
  UniqueFd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  std::vector<uint64_t> words(pages);
  const off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / page * sizeof(uint64_t));
  const size_t want = words.size() * sizeof(uint64_t);
  size_t got = 0;
  while (got < want) {
    ssize_t n = pread(fd.get(), reinterpret_cast<char*>(words.data()) + got, want - got, at + static_cast<off_t>(got));
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  out->resize(pages);
  for (size_t k = 0; k < pages; ++k) (*out)[k] = (words[k] >> 62) != 0;
  return true;
}

}  // namespace

std::vector<std::pair<uint64_t, uint64_t>> PageTable::TouchedRuns() const {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t table_pages = (pages_ * sizeof(PageEntry) + page - 1) / page;
  std::vector<bool> written;
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  if (!EverWritten(entries_, table_pages, page, &written)) {
    runs.emplace_back(0, pages_);  // cannot tell: every entry
    return runs;
  }
  // Table page k holds (parts of) entries [k*page / E, ((k+1)*page - 1) / E];
  // an entry straddling two pages is visited once.
  uint64_t next = 0;
  for (size_t k = 0; k < table_pages; ++k) {
    if (!written[k]) continue;
    const uint64_t first = std::max<uint64_t>(next, k * page / sizeof(PageEntry));
    const uint64_t end = std::min<uint64_t>(pages_, ((k + 1) * page - 1) / sizeof(PageEntry) + 1);
    if (first >= end) continue;
    if (!runs.empty() && runs.back().second == first) {
      runs.back().second = end;
    } else {
      runs.emplace_back(first, end);
    }
    next = end;
  }
  return runs;
}

Result<PageTable> PageTable::ForkCopy() const {
  TS_ASSIGN_OR_RETURN(PageTable t, Create(pages_));
  ForEachTouched([&](uint64_t p) {
    const PageEntry& e = entries_[p];
    if (e.state == PageState::kZero) return;  // untouched entries stay unwritten: no memory
    PageEntry& c = t.entries_[p];
    if (e.state == PageState::kResident) {
      c.state = PageState::kResident;
      c.crc = e.crc;
      c.flags = e.flags & kForceWrite;
    } else {
      c.state = PageState::kRemote;
    }
  });
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
