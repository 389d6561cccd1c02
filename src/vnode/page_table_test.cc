#include "vnode/page_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace tessera::vnode {
namespace {

constexpr uint64_t kPages = 2ull << 20;  // an 8 GiB range of 4 KiB pages

std::vector<uint64_t> Touched(const PageTable& t) {
  std::vector<uint64_t> v;
  t.ForEachTouched([&](uint64_t p) { v.push_back(p); });
  return v;
}

TEST(PageTableTest, AnUntouchedTableHasNothingToVisit) {
  auto t = PageTable::Create(kPages);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(Touched(*t).empty());
}

TEST(PageTableTest, VisitsEveryWrittenEntryOnceInOrderAndFewOthers) {
  auto t = PageTable::Create(kPages);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // Entries at both ends, and ones straddling the table's own pages.
  const std::vector<uint64_t> written{0, 170, 171, 1'000'000, kPages - 1};
  for (uint64_t p : written) (*t)[p].state = PageState::kRemote;
  const std::vector<uint64_t> seen = Touched(*t);
  for (size_t i = 1; i < seen.size(); ++i) ASSERT_LT(seen[i - 1], seen[i]) << "visited in order, once";
  size_t found = 0;
  for (uint64_t p : seen) found += (*t)[p].state != PageState::kZero;
  EXPECT_EQ(found, written.size());
  EXPECT_LT(seen.size(), 2'000u) << "the untouched rest of the table is skipped";
}

TEST(PageTableTest, AForkCopyKeepsResidentPagesAndMakesTheOthersRemote) {
  auto t = PageTable::Create(kPages);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  (*t)[5].state = PageState::kResident;
  (*t)[5].crc = 77;
  (*t)[5].flags = kForceWrite | kPrefetched;
  (*t)[900'000].state = PageState::kStaged;
  (*t)[kPages - 2].state = PageState::kWriteback;
  auto c = t->ForkCopy();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)[5].state, PageState::kResident);
  EXPECT_EQ((*c)[5].crc, 77u);
  EXPECT_EQ((*c)[5].flags, kForceWrite);
  EXPECT_EQ((*c)[900'000].state, PageState::kRemote);
  EXPECT_EQ((*c)[kPages - 2].state, PageState::kRemote);
  std::vector<uint64_t> seen = Touched(*c);
  size_t found = 0;
  for (uint64_t p : seen) found += (*c)[p].state != PageState::kZero;
  EXPECT_EQ(found, 3u);
}

}  // namespace
}  // namespace tessera::vnode
