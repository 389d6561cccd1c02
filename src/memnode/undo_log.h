// UndoLog: what a memory node keeps to close the write hole. A page write
// reaches the k+m nodes of its stripe one by one, and its writer can die in
// between; if each node simply kept the newest version, a page could be left
// with no k shares of one version. So when a write replaces a slot's
// contents, the node keeps the contents it replaced (the "previous") until
// the writer reports that write complete on every node (its done_below
// watermark, carried on its later requests). A reader that finds the current
// versions disagreeing takes the newest version k shares hold as current or
// previous — which, because of this log, always includes the last complete
// write.
//
// Only unfinished writes have entries, so the log is small: about a client's
// queue depth of shares per writer, plus the writes of clients that died
// before finishing (until someone writes or resolves those pages). It is
// bounded by Options::max_bytes; past that, writes land without an undo copy
// (a crash then leaves an explicit "interrupted" read error rather than an
// older version) and full_misses() counts them.
//
// An entry is "orphaned" once its write has been unfinished for longer than
// Options::orphan_ms: only then may another writer roll it back.
//
// Thread-safety: not thread-safe; owned by the FragmentStore, which the
// memory node's server thread owns.
#pragma once

#include <cstdint>
#include <functional>
#include <deque>
#include <utility>
#include <unordered_map>
#include <vector>

namespace tessera::memnode {

struct UndoOptions {
  uint64_t max_bytes = 256ull << 20;
  uint32_t orphan_ms = 1000;
  std::function<uint64_t()> now_ns;  // empty: the monotonic clock
};

struct UndoEntry {
  uint64_t writer = 0;
  uint64_t version = 0;   // the unfinished write now in the slot
  uint64_t since_ns = 0;  // when it landed
  uint64_t prev_version = 0;
  uint32_t prev_crc = 0;
  // The contents it replaced; empty if they were zeros (a never-written or
  // released slot), which are not copied: a heap's first eviction writes
  // only such slots.
  std::vector<uint8_t> prev;
};

class UndoLog {
 public:
  explicit UndoLog(UndoOptions options);

  UndoEntry* Find(uint64_t region, uint32_t fragment, uint32_t slot);
  // `writer`'s write of `version` is replacing a slot whose contents are
  // (prev_version, prev_crc, prev — null: `size` bytes of zeros); keeps them,
  // in a new entry or in place of this writer's own earlier one. False (and
  // nothing kept) if the log is full.
  bool Record(uint64_t region, uint32_t fragment, uint32_t slot, uint64_t writer, uint64_t version,
              uint64_t prev_version, uint32_t prev_crc, const uint8_t* prev, uint32_t size);
  // The slot's write is settled (complete, or rolled back): drop its entry.
  void Erase(uint64_t region, uint32_t fragment, uint32_t slot);
  // Every write of `writer` in `region` with a version below done_below is
  // complete: drops their entries.
  void Commit(uint64_t region, uint64_t writer, uint64_t done_below);
  bool Orphaned(const UndoEntry& e) const;
  void DropRegion(uint64_t region);
  void DropFragment(uint64_t region, uint32_t fragment);

  uint64_t bytes() const { return bytes_; }
  size_t entries() const;
  uint64_t full_misses() const { return full_misses_; }

 private:
  struct RegionLog {
    std::unordered_map<uint64_t, UndoEntry> entries;  // by Key(fragment, slot)
    // Per writer, (version, key) in arrival order: nearly version order, and
    // Commit stops at the first one not yet complete, so an out-of-order one
    // is only committed late, never early. Elements whose entry has since
    // been settled or replaced are skipped when reached.
    std::unordered_map<uint64_t, std::deque<std::pair<uint64_t, uint64_t>>> by_writer;
  };
  static uint64_t Key(uint32_t fragment, uint32_t slot) { return uint64_t{fragment} << 32 | slot; }
  uint64_t Now() const;
  void EraseEntry(RegionLog& log, std::unordered_map<uint64_t, UndoEntry>::iterator it);
  // Undo buffers of settled entries, reused: a write per page share must not
  // cost an allocation.
  std::vector<std::vector<uint8_t>> spare_;

  UndoOptions options_;
  std::unordered_map<uint64_t, RegionLog> regions_;
  uint64_t bytes_ = 0;
  uint64_t full_misses_ = 0;
};

}  // namespace tessera::memnode
