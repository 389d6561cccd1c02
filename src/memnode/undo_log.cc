#include "memnode/undo_log.h"

#include "common/clock.h"

namespace tessera::memnode {
namespace {

constexpr size_t kMaxSpare = 4096;

}  // namespace

UndoLog::UndoLog(UndoOptions options) : options_(std::move(options)) {}

uint64_t UndoLog::Now() const { return options_.now_ns ? options_.now_ns() : NowNanos(); }

UndoEntry* UndoLog::Find(uint64_t region, uint32_t fragment, uint32_t slot) {
  auto r = regions_.find(region);
  if (r == regions_.end()) return nullptr;
  auto it = r->second.entries.find(Key(fragment, slot));
  return it == r->second.entries.end() ? nullptr : &it->second;
}

bool UndoLog::Record(uint64_t region, uint32_t fragment, uint32_t slot, uint64_t writer, uint64_t version,
                     uint64_t prev_version, uint32_t prev_crc, const uint8_t* prev, uint32_t size) {
  RegionLog& log = regions_[region];
  const uint64_t key = Key(fragment, slot);
  const uint32_t kept = prev != nullptr ? size : 0;
  auto it = log.entries.find(key);
  if (it == log.entries.end()) {
    if (bytes_ + kept > options_.max_bytes) {
      ++full_misses_;
      if (log.entries.empty()) regions_.erase(region);
      return false;
    }
    it = log.entries.emplace(key, UndoEntry{}).first;
    if (!spare_.empty()) {
      it->second.prev = std::move(spare_.back());
      it->second.prev.clear();  // its capacity is what is reused
      spare_.pop_back();
    }
  }
  UndoEntry& e = it->second;
  bytes_ = bytes_ - e.prev.size() + kept;
  e.writer = writer;
  e.version = version;
  e.since_ns = Now();
  e.prev_version = prev_version;
  e.prev_crc = prev_crc;
  if (prev != nullptr) {
    e.prev.assign(prev, prev + size);
  } else {
    e.prev.clear();
  }
  log.by_writer[writer].push_back({version, key});
  return true;
}

void UndoLog::EraseEntry(RegionLog& log, std::unordered_map<uint64_t, UndoEntry>::iterator it) {
  bytes_ -= it->second.prev.size();
  if (spare_.size() < kMaxSpare) spare_.push_back(std::move(it->second.prev));
  log.entries.erase(it);
}

void UndoLog::Erase(uint64_t region, uint32_t fragment, uint32_t slot) {
  auto r = regions_.find(region);
  if (r == regions_.end()) return;
  auto it = r->second.entries.find(Key(fragment, slot));
  if (it != r->second.entries.end()) EraseEntry(r->second, it);
  if (r->second.entries.empty()) regions_.erase(r);
}

void UndoLog::Commit(uint64_t region, uint64_t writer, uint64_t done_below) {
  auto r = regions_.find(region);
  if (r == regions_.end()) return;
  RegionLog& log = r->second;
  auto w = log.by_writer.find(writer);
  if (w == log.by_writer.end()) return;
  auto& order = w->second;
  while (!order.empty() && order.front().first < done_below) {
    auto [version, key] = order.front();
    order.pop_front();
    auto it = log.entries.find(key);
    // Still this write's entry (not settled, not replaced by a later write).
    if (it != log.entries.end() && it->second.writer == writer && it->second.version == version) {
      EraseEntry(log, it);
    }
  }
  if (order.empty()) log.by_writer.erase(w);
  if (log.entries.empty()) regions_.erase(r);
}

bool UndoLog::Orphaned(const UndoEntry& e) const {
  return Now() - e.since_ns >= uint64_t{options_.orphan_ms} * 1'000'000;
}

void UndoLog::DropRegion(uint64_t region) {
  auto r = regions_.find(region);
  if (r == regions_.end()) return;
  for (auto& [key, e] : r->second.entries) bytes_ -= e.prev.size();
  regions_.erase(r);
}

void UndoLog::DropFragment(uint64_t region, uint32_t fragment) {
  auto r = regions_.find(region);
  if (r == regions_.end()) return;
  auto& entries = r->second.entries;
  for (auto it = entries.begin(); it != entries.end();) {
    if (it->first >> 32 != fragment) {
      ++it;
      continue;
    }
    auto next = std::next(it);
    EraseEntry(r->second, it);
    it = next;
  }
}

size_t UndoLog::entries() const {
  size_t n = 0;
  for (const auto& [id, log] : regions_) n += log.entries.size();
  return n;
}

}  // namespace tessera::memnode
