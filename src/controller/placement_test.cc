#include "controller/placement.h"

#include <map>

#include <gtest/gtest.h>

namespace tessera::controller {
namespace {

TEST(PlacementTest, EqualNodesInterleave) {
  auto p = PlaceFragments({{1, 100}, {2, 100}, {3, 100}}, std::vector<uint64_t>(6, 10));
  ASSERT_TRUE(p.ok());
  std::map<uint64_t, int> count;
  for (size_t i = 0; i < p->size(); ++i) {
    ++count[(*p)[i]];
    if (i > 0) {
      EXPECT_NE((*p)[i], (*p)[i - 1]) << "consecutive fragments on one node";
    }
  }
  EXPECT_EQ(count[1], 2);
  EXPECT_EQ(count[2], 2);
  EXPECT_EQ(count[3], 2);
}

TEST(PlacementTest, WeightedByFreeSpace) {
  auto p = PlaceFragments({{1, 300}, {2, 100}}, std::vector<uint64_t>(40, 1));
  ASSERT_TRUE(p.ok());
  int on1 = 0;
  for (uint64_t n : *p) on1 += n == 1;
  EXPECT_EQ(on1, 30);
}

TEST(PlacementTest, NeverOverfillsANode) {
  auto p = PlaceFragments({{1, 10}, {2, 1000}}, std::vector<uint64_t>(50, 10));
  ASSERT_TRUE(p.ok());
  int on1 = 0;
  for (uint64_t n : *p) on1 += n == 1;
  EXPECT_LE(on1, 1);
}

TEST(PlacementTest, OutOfCapacitySaysHowMuch) {
  auto p = PlaceFragments({{1, 1024}, {2, 1024}}, std::vector<uint64_t>(3, 1024));
  EXPECT_EQ(p.status().code(), Code::kOutOfCapacity);
  EXPECT_NE(p.status().message().find("3.0 KiB"), std::string::npos) << p.status().message();
  // Enough in total but not in one piece.
  auto q = PlaceFragments({{1, 600}, {2, 600}}, {1000});
  EXPECT_EQ(q.status().code(), Code::kOutOfCapacity);
  EXPECT_EQ(PlaceFragments({}, {1}).status().code(), Code::kOutOfCapacity);
}

}  // namespace
}  // namespace tessera::controller
