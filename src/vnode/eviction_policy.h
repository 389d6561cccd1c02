// EvictionPolicy: which resident pages to move out next.
//
// A user-space pager cannot read the CPU's accessed bits, so recency comes
// from faults: an evicted page first goes to the staging area (staging.h),
// still in local memory, and a touch there brings it back as a cheap local
// fault that the policy hears as Admit(page, referenced = true). ClockPolicy
// is CLOCK over that information: resident pages sit in a ring in the order
// they came in; the hand gives a referenced page a second pass and takes an
// unreferenced one. FifoPolicy ignores references (the baseline that thrashes).
// Both hand out a victim together with its resident neighbours that the hand
// would take soon anyway (unreferenced, older half of the ring): every move
// out of the program is a system call and a TLB flush that costs about as
// much for one page as for a run of them.
//
// Pages leave residency by other routes (freed, discarded) without telling
// the policy: each page's PageEntry::policy_word holds its ticket in the ring,
// and a stale ticket is skipped when the hand reaches it.
//
// Thread-safety: none; the pager's thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "vnode/page_table.h"

namespace tessera::vnode {

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // `page` became resident; `referenced`: it was touched while out (rescued
  // from staging) — evidence that it is in use.
  virtual void Admit(PageTable& table, uint64_t page, bool referenced) = 0;
  // Appends up to `max` resident pages to evict.
  virtual void PickVictims(PageTable& table, size_t max, std::vector<uint64_t>* out) = 0;
};

// "clock" or "fifo".
Result<std::unique_ptr<EvictionPolicy>> NewEvictionPolicy(const std::string& name);

}  // namespace tessera::vnode
