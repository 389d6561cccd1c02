#include "vnode/eviction_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace tessera::vnode {
namespace {

class EvictionPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = PageTable::Create(1 << 16);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    table_.emplace(std::move(*t));
    auto p = NewEvictionPolicy("clock");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    policy_ = std::move(*p);
  }
  void Admit(uint64_t page, bool referenced = false) {
    (*table_)[page].state = PageState::kResident;
    policy_->Admit(*table_, page, referenced);
  }
  std::vector<uint64_t> Pick(size_t max) {
    std::vector<uint64_t> out;
    policy_->PickVictims(*table_, max, &out);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::optional<PageTable> table_;
  std::unique_ptr<EvictionPolicy> policy_;
};

TEST_F(EvictionPolicyTest, AReferencedPageGetsASecondPass) {
  Admit(100, /*referenced=*/true);
  Admit(5000);
  Admit(9000);
  EXPECT_EQ(Pick(1), std::vector<uint64_t>{5000});
  EXPECT_EQ(Pick(1), std::vector<uint64_t>{9000});
  EXPECT_EQ(Pick(1), std::vector<uint64_t>{100});  // its pass used up
}

TEST_F(EvictionPolicyTest, AVictimTakesItsOldColdNeighboursButNotYoungOrReferencedOnes) {
  // Old: pages 1000-1009, of which 1004 was touched while out (referenced),
  // then others; young: 1010-1013, the last to come in.
  for (uint64_t p = 1000; p < 1010; ++p) Admit(p, p == 1004);
  for (uint64_t p = 20000; p < 20040; ++p) Admit(p);
  for (uint64_t p = 1010; p < 1014; ++p) Admit(p);
  // The hand takes 1000; its neighbours up to the referenced 1004 come
  // along, to be moved in one run.
  EXPECT_EQ(Pick(4), (std::vector<uint64_t>{1000, 1001, 1002, 1003}));
  // 1004 gets its second pass (and is young now); 1005 is next, with the old
  // pages after it but not the young 1010 onwards; then the hand goes on.
  EXPECT_EQ(Pick(6), (std::vector<uint64_t>{1005, 1006, 1007, 1008, 1009, 20000}));
  // A page that is not resident ends a run.
  (*table_)[20011].state = PageState::kStaged;
  const std::vector<uint64_t> next = Pick(64);
  EXPECT_EQ(std::count(next.begin(), next.end(), 20011), 0);
  // No page is handed out twice.
  std::vector<uint64_t> all = next;
  while (true) {
    std::vector<uint64_t> more = Pick(64);
    if (more.empty()) break;
    all.insert(all.end(), more.begin(), more.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

TEST_F(EvictionPolicyTest, NeighboursCountTowardsTheLimit) {
  for (uint64_t p = 0; p < 100; ++p) Admit(p);
  for (uint64_t p = 50000; p < 50200; ++p) Admit(p);
  EXPECT_EQ(Pick(8), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

}  // namespace
}  // namespace tessera::vnode
