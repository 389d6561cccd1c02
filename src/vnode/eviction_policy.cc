#include "vnode/eviction_policy.h"

#include <algorithm>

namespace tessera::vnode {
namespace {

// policy_word: bit 31 is the reference bit, bits 0..30 the ticket of the
// page's current place in the ring.
constexpr uint32_t kRef = 1u << 31;
constexpr uint32_t kTicketMask = kRef - 1;

class RingPolicy : public EvictionPolicy {
 public:
  explicit RingPolicy(bool second_chance) : second_chance_(second_chance) {}

  void Admit(PageTable& table, uint64_t page, bool referenced) override {
    Enqueue(table, page, referenced && second_chance_);
    // Pages freed while the cache is not full leave stale slots that no hand
    // passes: sweep them when they could dominate.
    if (ring_.size() > compact_at_) {
      std::erase_if(ring_, [&](const Slot& s) { return !Live(table, s); });
      compact_at_ = std::max<size_t>(2 * ring_.size(), kMinCompact);
    }
  }

  void PickVictims(PageTable& table, size_t max, std::vector<uint64_t>* out) override {
    // Every live page is passed at most twice (once to clear its bit).
    size_t budget = 2 * ring_.size() + 1;
    size_t taken = 0;
    while (taken < max && !ring_.empty() && budget-- > 0) {
      Slot s = ring_.front();
      ring_.pop_front();
      if (!Live(table, s)) continue;
      PageEntry& e = table[s.page];
      if (e.policy_word & kRef) {
        Enqueue(table, s.page, false);
        continue;
      }
      e.policy_word = 0;  // no ticket: out of the ring
      out->push_back(s.page);
      ++taken;
      taken += TakeNeighbours(table, s.page, max - taken, out);
    }
  }

 private:
  struct Slot {
    uint64_t page;
    uint32_t ticket;
  };
  static constexpr size_t kMinCompact = 4096;
  // How far from a victim its neighbours are taken along (pages, each way).
  static constexpr uint64_t kClusterReach = 31;

  // Each move out of the program is a system call and a TLB flush, and costs
  // about as much for one page as for 64 (doc/design.md): so a victim takes
  // along the resident pages around it that the hand would take soon anyway —
  // unreferenced, and in the older half of the ring — up to the first that
  // is not. Returns how many it appended.
  size_t TakeNeighbours(PageTable& table, uint64_t page, size_t max, std::vector<uint64_t>* out) {
    size_t taken = 0;
    for (int dir : {1, -1}) {
      for (uint64_t k = 1; k <= kClusterReach && taken < max; ++k) {
        const uint64_t q = page + static_cast<uint64_t>(dir) * k;
        if (q >= table.size() || !Old(table[q])) break;
        table[q].policy_word = 0;
        out->push_back(q);
        ++taken;
      }
    }
    return taken;
  }
  bool Old(const PageEntry& e) const {
    const uint32_t ticket = e.policy_word & kTicketMask;
    if (e.state != PageState::kResident || ticket == 0 || (e.policy_word & kRef)) return false;
    const uint32_t age = (next_ticket_ - ticket) & kTicketMask;
    return age > ring_.size() / 2;
  }
  static bool Live(const PageTable& table, const Slot& s) {
    const PageEntry& e = table[s.page];
    return e.state == PageState::kResident && (e.policy_word & kTicketMask) == s.ticket;
  }
  void Enqueue(PageTable& table, uint64_t page, bool ref) {
    uint32_t ticket = next_ticket_++ & kTicketMask;
    if (ticket == 0) ticket = next_ticket_++ & kTicketMask;  // 0 means "none"
    table[page].policy_word = ticket | (ref ? kRef : 0);
    ring_.push_back({page, ticket});
  }

  const bool second_chance_;
  std::deque<Slot> ring_;
  uint32_t next_ticket_ = 1;
  size_t compact_at_ = kMinCompact;
};

}  // namespace

Result<std::unique_ptr<EvictionPolicy>> NewEvictionPolicy(const std::string& name) {
  if (name == "clock") return std::unique_ptr<EvictionPolicy>(std::make_unique<RingPolicy>(true));
  if (name == "fifo") return std::unique_ptr<EvictionPolicy>(std::make_unique<RingPolicy>(false));
  return InvalidArgument("unknown eviction policy '" + name + "' (known: clock, fifo)");
}

}  // namespace tessera::vnode
