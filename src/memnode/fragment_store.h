// FragmentStore: the memory a memory node owns, and the only place that knows
// where a page lives in it. Clients and the controller name storage by
// (region, fragment, slot); the store translates that to an address of its own,
// so it may later move, compact or share memory without telling anyone.
//
// Each fragment is one anonymous mapping of slots * slot_size bytes plus a
// CRC32C and a version per slot (the version of the page write the slot
// holds; 0 = never written) in a second one. Mappings are made MAP_NORESERVE
// and populated by use, so an allocated but unwritten fragment costs no RSS,
// data or metadata; freeing a region unmaps its fragments, which gives the
// memory back to the OS at once.
// A slot never written reads as zeros with the CRC of zeros.
//
// Capacity is the sum of allocated fragment sizes and never exceeds
// Options::capacity_bytes: Allocate is all-or-nothing.
//
// Beside each slot, the store keeps an UndoLog (undo_log.h) of the contents
// unfinished writes replaced; write_rules.h decides what a write does to both,
// and version_limit.h which versions a write may carry at all.
//
// Thread-safety: not thread-safe — the memory node's single server thread owns
// it — except used_bytes() and capacity_bytes(), which any thread may read.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "memnode/undo_log.h"
#include "memnode/version_limit.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {

struct SlotView {
  uint8_t* data = nullptr;
  uint32_t size = 0;
  uint32_t* crc = nullptr;
  uint64_t* version = nullptr;
  // The slot holds zeros by a write that sent none (c2m.h): its memory may
  // be given back to the OS.
  bool* zeros = nullptr;
};

class FragmentStore {
 public:
  explicit FragmentStore(uint64_t capacity_bytes, UndoOptions undo = {}, VersionLimit limit = {});
  ~FragmentStore();
  FragmentStore(const FragmentStore&) = delete;
  FragmentStore& operator=(const FragmentStore&) = delete;

  // Allocates every fragment in `specs` for `region`, or none of them, and
  // admits `epoch` (below).
  Status Allocate(uint64_t region, uint64_t epoch, std::span<const proto::ctl2m::FragmentSpec> specs);
  // A request made with region map `epoch`: StaleMap if the controller has
  // told this node of a newer map. A newer epoch from a client is let through
  // but not adopted (only the controller moves a node's epoch, so one
  // confused client cannot lock the others out). Ok for a region the node
  // does not hold (the lookup that follows says so).
  Status AdmitEpoch(uint64_t region, uint64_t epoch);
  // The controller's word that `region`'s map is now at `epoch` (never lowers).
  void RaiseEpoch(uint64_t region, uint64_t epoch);
  // Allocates fragments `fragments` of `region` as copies of the same
  // fragments of `source` (which must all be here), content, CRCs and
  // versions alike; all or nothing, within capacity, like Allocate. Only
  // written slots are copied, so the copy costs RSS only where the source
  // does. Unfinished writes' undo entries stay with the source: the caller
  // clones a region no one is writing.
  Status Clone(uint64_t region, uint64_t epoch, uint64_t source, std::span<const uint32_t> fragments);
  // Unmaps every fragment of `region`; returns the bytes freed (0 if unknown).
  uint64_t FreeRegion(uint64_t region);
  // Unmaps the listed fragments of `region` that are here (and their undo
  // entries); returns the bytes freed.
  uint64_t FreeFragments(uint64_t region, std::span<const uint32_t> fragments);
  // Unmaps every fragment of every region (the node's membership expired:
  // the cluster has given up what it held); returns the bytes freed.
  uint64_t FreeAll();

  // Translates a name to the slot's memory. NotFound for an unknown region
  // or fragment, InvalidArgument for a slot past the fragment's end.
  Result<SlotView> Lookup(uint64_t region, uint32_t fragment, uint32_t slot);
  // Gives back to the OS every memory page of the slot's fragment that holds
  // only zeros written as such, or never-written slots, around `slot` (which
  // Lookup found). Called after a write of zeros lands.
  void ReleaseZeros(uint64_t region, uint32_t fragment, uint32_t slot);
  // The bytes of this node's fragments the OS holds in memory now (mincore).
  uint64_t ResidentBytes() const;
  // Zeros to send for a slot that holds them: reading them from the slot
  // would map memory back in.
  const uint8_t* zeros() const { return zeros_.data(); }

  UndoLog& undo() { return undo_; }
  // The newest version a write may carry (version_limit.h).
  const VersionLimit& version_limit() const { return version_limit_; }

  uint64_t used_bytes() const { return used_.load(std::memory_order_relaxed); }
  uint64_t capacity_bytes() const { return capacity_; }
  size_t region_count() const { return regions_.size(); }

 private:
  // A slot's version and CRC side by side: a write or read touches both, and
  // on the data path every cache miss shows (a lookup is per page share).
  struct SlotMeta {
    uint64_t version = 0;
    uint32_t crc = 0;
    bool zeros = false;  // fits the padding: still 16 bytes
  };
  static_assert(sizeof(SlotMeta) == 16);
  struct Fragment {
    uint8_t* base = nullptr;
    uint64_t bytes = 0;
    uint32_t slots = 0;
    uint32_t slot_size = 0;
    uint32_t zero_crc = 0;  // of a slot of zeros
    // One per slot, in a mapping of its own that costs memory only where
    // slots are used: all zeros until then (version 0: never written; the
    // CRC is filled in at the first lookup).
    SlotMeta* meta = nullptr;
  };
  struct Region {
    uint64_t epoch = 0;
    // Only the fragments this node holds: a region's fragment numbers are
    // sparse here, and a hostile number must not size anything. Held in the
    // map's nodes (no further indirection), which never move.
    std::unordered_map<uint32_t, Fragment> fragments;
  };
  static void Unmap(Fragment& f);
  static uint64_t MetaBytes(uint32_t slots);

  const uint64_t capacity_;
  std::atomic<uint64_t> used_{0};
  std::unordered_map<uint64_t, Region> regions_;
  UndoLog undo_;
  const VersionLimit version_limit_;
  std::vector<uint8_t> zeros_;  // as long as the longest slot
};

}  // namespace tessera::memnode
