#include "memnode/fragment_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>

#include "common/check.h"
#include "common/crc.h"

namespace tessera::memnode {

FragmentStore::FragmentStore(uint64_t capacity_bytes, UndoOptions undo, VersionLimit limit)
    : capacity_(capacity_bytes), undo_(std::move(undo)), version_limit_(std::move(limit)) {}

FragmentStore::~FragmentStore() {
  for (auto& [id, region] : regions_) {
    for (auto& [n, f] : region.fragments) Unmap(f);
  }
}

uint64_t FragmentStore::MetaBytes(uint32_t slots) { return static_cast<uint64_t>(slots) * sizeof(SlotMeta); }

void FragmentStore::Unmap(Fragment& f) {
  CHECK(munmap(f.base, f.bytes) == 0) << "munmap: " << errno;
  CHECK(munmap(f.meta, MetaBytes(f.slots)) == 0) << "munmap: " << errno;
  f.base = nullptr;
  f.meta = nullptr;
}

Status FragmentStore::AdmitEpoch(uint64_t region, uint64_t epoch) {
  auto it = regions_.find(region);
  if (it == regions_.end()) return Status::Ok();
  if (epoch < it->second.epoch) {
    return StaleMap("region " + std::to_string(region) + " map epoch " + std::to_string(epoch) +
                    " is older than this node's " + std::to_string(it->second.epoch));
  }
  return Status::Ok();
}

void FragmentStore::RaiseEpoch(uint64_t region, uint64_t epoch) {
  auto it = regions_.find(region);
  if (it != regions_.end()) it->second.epoch = std::max(it->second.epoch, epoch);
}

Status FragmentStore::Allocate(uint64_t region, uint64_t epoch, std::span<const proto::ctl2m::FragmentSpec> specs) {
  uint64_t want = 0;
  Region& r = regions_[region];
  std::unordered_set<uint32_t> seen;
  for (const auto& s : specs) {
    if (!seen.insert(s.fragment).second) {
      if (r.fragments.empty()) regions_.erase(region);
      return InvalidArgument("fragment " + std::to_string(s.fragment) + " listed twice");
    }
    if (r.fragments.count(s.fragment)) {
      return AlreadyExists("region " + std::to_string(region) + " fragment " + std::to_string(s.fragment) +
                           " is already allocated here");
    }
    want += static_cast<uint64_t>(s.slots) * s.slot_size;
  }
  uint64_t used = used_bytes();
  if (want > capacity_ - used) {
    if (r.fragments.empty()) regions_.erase(region);
    return OutOfCapacity("needs " + std::to_string(want) + " bytes, " + std::to_string(capacity_ - used) +
                         " of " + std::to_string(capacity_) + " free");
  }
  std::vector<Fragment> made;
  for (const auto& s : specs) {
    Fragment f{.slots = s.slots, .slot_size = s.slot_size, .zero_crc = Crc32cOfZeros(s.slot_size)};
    if (zeros_.size() < s.slot_size) zeros_.resize(s.slot_size);
    f.bytes = static_cast<uint64_t>(s.slots) * s.slot_size;
    constexpr int kFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    void* p = mmap(nullptr, f.bytes, PROT_READ | PROT_WRITE, kFlags, -1, 0);
    void* m = p == MAP_FAILED ? MAP_FAILED : mmap(nullptr, MetaBytes(f.slots), PROT_READ | PROT_WRITE, kFlags, -1, 0);
    if (m == MAP_FAILED) {
      Status err = Status::FromErrno(errno, "mmap of " + std::to_string(f.bytes) + " bytes");
      if (p != MAP_FAILED) munmap(p, f.bytes);
      for (auto& done : made) Unmap(done);
      if (r.fragments.empty()) regions_.erase(region);
      return err;
    }
    f.base = static_cast<uint8_t*>(p);
    f.meta = static_cast<SlotMeta*>(m);
    made.push_back(std::move(f));
  }
  for (size_t i = 0; i < specs.size(); ++i) r.fragments.emplace(specs[i].fragment, std::move(made[i]));
  r.epoch = std::max(r.epoch, epoch);
  used_.fetch_add(want, std::memory_order_relaxed);
  return Status::Ok();
}

Status FragmentStore::Clone(uint64_t region, uint64_t epoch, uint64_t source, std::span<const uint32_t> fragments) {
  if (region == source) return InvalidArgument("a region cannot be cloned onto itself");
  auto src = regions_.find(source);
  if (src == regions_.end()) return NotFound("region " + std::to_string(source) + " has no fragments here");
  std::vector<proto::ctl2m::FragmentSpec> specs;
  specs.reserve(fragments.size());
  for (uint32_t n : fragments) {
    auto f = src->second.fragments.find(n);
    if (f == src->second.fragments.end()) {
      return NotFound("region " + std::to_string(source) + " fragment " + std::to_string(n) + " is not on this node");
    }
    specs.push_back({n, f->second.slots, f->second.slot_size});
  }
  TS_RETURN_IF_ERROR(Allocate(region, epoch, specs));
  // Allocate may have rehashed regions_; the fragments themselves never move.
  Region& from = regions_.at(source);
  Region& to = regions_.at(region);
  for (uint32_t n : fragments) {
    const Fragment& s = from.fragments.at(n);
    Fragment& d = to.fragments.at(n);
    for (uint32_t slot = 0; slot < s.slots; ++slot) {
      if (s.meta[slot].version == 0) continue;  // never written: nothing to copy, not even metadata
      d.meta[slot] = s.meta[slot];
      if (s.meta[slot].zeros) continue;  // zeros already
      const uint64_t off = static_cast<uint64_t>(slot) * s.slot_size;
      std::memcpy(d.base + off, s.base + off, s.slot_size);
    }
  }
  return Status::Ok();
}

uint64_t FragmentStore::FreeRegion(uint64_t region) {
  auto it = regions_.find(region);
  if (it == regions_.end()) return 0;
  uint64_t freed = 0;
  for (auto& [n, f] : it->second.fragments) {
    freed += f.bytes;
    Unmap(f);
  }
  regions_.erase(it);
  undo_.DropRegion(region);
  used_.fetch_sub(freed, std::memory_order_relaxed);
  return freed;
}

uint64_t FragmentStore::FreeFragments(uint64_t region, std::span<const uint32_t> fragments) {
  auto it = regions_.find(region);
  if (it == regions_.end()) return 0;
  uint64_t freed = 0;
  for (uint32_t n : fragments) {
    auto f = it->second.fragments.find(n);
    if (f == it->second.fragments.end()) continue;
    freed += f->second.bytes;
    Unmap(f->second);
    it->second.fragments.erase(f);
    undo_.DropFragment(region, n);
  }
  if (it->second.fragments.empty()) {
    regions_.erase(it);
    undo_.DropRegion(region);
  }
  used_.fetch_sub(freed, std::memory_order_relaxed);
  return freed;
}

uint64_t FragmentStore::FreeAll() {
  std::vector<uint64_t> ids;
  for (const auto& [id, r] : regions_) ids.push_back(id);
  uint64_t freed = 0;
  for (uint64_t id : ids) freed += FreeRegion(id);
  return freed;
}

Result<SlotView> FragmentStore::Lookup(uint64_t region, uint32_t fragment, uint32_t slot) {
  auto it = regions_.find(region);
  if (it == regions_.end()) return NotFound("region " + std::to_string(region) + " has no fragments here");
  auto frag = it->second.fragments.find(fragment);
  if (frag == it->second.fragments.end()) {
    return NotFound("region " + std::to_string(region) + " fragment " + std::to_string(fragment) +
                    " is not on this node");
  }
  Fragment& f = frag->second;
  if (slot >= f.slots) {
    return InvalidArgument("slot " + std::to_string(slot) + " is past the end of region " +
                           std::to_string(region) + " fragment " + std::to_string(fragment) + " (" +
                           std::to_string(f.slots) + " slots)");
  }
  SlotMeta& m = f.meta[slot];
  if (m.version == 0 && m.crc == 0) m.crc = f.zero_crc;  // first use
  return SlotView{f.base + static_cast<uint64_t>(slot) * f.slot_size, f.slot_size, &m.crc, &m.version, &m.zeros};
}

void FragmentStore::ReleaseZeros(uint64_t region, uint32_t fragment, uint32_t slot) {
  Fragment& f = regions_.at(region).fragments.at(fragment);
  const uint64_t os_page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t begin = static_cast<uint64_t>(slot) * f.slot_size, end = begin + f.slot_size;
  auto empty = [&](uint64_t s) { return f.meta[s].version == 0 || f.meta[s].zeros; };
  for (uint64_t page = begin / os_page * os_page; page < end && page < f.bytes; page += os_page) {
    const uint64_t last = std::min(page + os_page, f.bytes) - 1;
    bool all = true;
    for (uint64_t s = page / f.slot_size; s <= last / f.slot_size && all; ++s) all = empty(s);
    if (all) madvise(f.base + page, std::min(os_page, f.bytes - page), MADV_DONTNEED);
  }
}

uint64_t FragmentStore::ResidentBytes() const {
  const uint64_t os_page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t total = 0;
  std::vector<unsigned char> v;
  for (const auto& [id, r] : regions_) {
    for (const auto& [n, f] : r.fragments) {
      v.resize((f.bytes + os_page - 1) / os_page);
      if (mincore(f.base, f.bytes, v.data()) != 0) continue;
      for (unsigned char c : v) total += (c & 1) * os_page;
    }
  }
  return total;
}

}  // namespace tessera::memnode
