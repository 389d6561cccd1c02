#include "controller/placement.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

namespace tessera::controller {
namespace {

// Width 1 (no redundancy): one fragment per stripe.
std::vector<NodeSlot> Nodes(std::vector<std::pair<uint64_t, uint64_t>> id_free) {
  std::vector<NodeSlot> out;
  for (auto [id, free] : id_free) out.push_back({id, free, ""});
  return out;
}

TEST(PlaceStripesTest, EqualNodesInterleave) {
  auto p = PlaceStripes(Nodes({{1, 100}, {2, 100}, {3, 100}}), 1, 6, 10);
  ASSERT_TRUE(p.ok());
  std::map<uint64_t, int> count;
  for (size_t i = 0; i < p->size(); ++i) {
    ++count[(*p)[i]];
    if (i > 0) {
      EXPECT_NE((*p)[i], (*p)[i - 1]) << "consecutive stripes on one node";
    }
  }
  EXPECT_EQ(count[1], 2);
  EXPECT_EQ(count[2], 2);
  EXPECT_EQ(count[3], 2);
}

TEST(PlaceStripesTest, WeightedByFreeSpace) {
  auto p = PlaceStripes(Nodes({{1, 300}, {2, 100}}), 1, 40, 1);
  ASSERT_TRUE(p.ok());
  int on1 = 0;
  for (uint64_t n : *p) on1 += n == 1;
  EXPECT_EQ(on1, 30);
}

TEST(PlaceStripesTest, NeverOverfillsANode) {
  auto p = PlaceStripes(Nodes({{1, 10}, {2, 1000}}), 1, 50, 10);
  ASSERT_TRUE(p.ok());
  int on1 = 0;
  for (uint64_t n : *p) on1 += n == 1;
  EXPECT_LE(on1, 1);
}

TEST(PlaceStripesTest, OutOfCapacitySaysHowMuch) {
  auto p = PlaceStripes(Nodes({{1, 1024}, {2, 1024}}), 1, 3, 1024);
  EXPECT_EQ(p.status().code(), Code::kOutOfCapacity);
  EXPECT_NE(p.status().message().find("3.0 KiB"), std::string::npos) << p.status().message();
  // Enough in total but not in one piece.
  auto q = PlaceStripes(Nodes({{1, 600}, {2, 600}}), 1, 1, 1000);
  EXPECT_EQ(q.status().code(), Code::kOutOfCapacity);
  EXPECT_EQ(PlaceStripes({}, 1, 1, 1).status().code(), Code::kUnavailable);
}

TEST(PlaceStripesTest, EachStripeOnDistinctNodesAndEvenlySpread) {
  std::vector<NodeSlot> nodes;
  for (uint64_t id = 1; id <= 8; ++id) nodes.push_back({id, 1 << 20, ""});
  auto p = PlaceStripes(nodes, 6, 40, 1024);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 240u);
  std::map<uint64_t, int> load;
  for (size_t s = 0; s < 40; ++s) {
    std::set<uint64_t> in_stripe((*p).begin() + s * 6, (*p).begin() + s * 6 + 6);
    EXPECT_EQ(in_stripe.size(), 6u) << "stripe " << s;
    for (uint64_t n : in_stripe) ++load[n];
  }
  for (auto& [n, c] : load) EXPECT_EQ(c, 30) << "node " << n;
}

TEST(PlaceStripesTest, SpreadsOverFailureDomains) {
  // Three racks of two nodes: a stripe of three takes one node from each.
  std::vector<NodeSlot> nodes = {{1, 1 << 20, "a"}, {2, 1 << 20, "a"}, {3, 1 << 20, "b"},
                                 {4, 1 << 20, "b"}, {5, 1 << 20, "c"}, {6, 1 << 20, "c"}};
  auto p = PlaceStripes(nodes, 3, 30, 1024);
  ASSERT_TRUE(p.ok());
  auto rack = [&](uint64_t id) { return nodes[id - 1].domain; };
  for (size_t s = 0; s < 30; ++s) {
    std::set<std::string> racks = {rack((*p)[s * 3]), rack((*p)[s * 3 + 1]), rack((*p)[s * 3 + 2])};
    EXPECT_EQ(racks.size(), 3u) << "stripe " << s;
  }
}

TEST(PlaceStripesTest, TooFewNodesOrTooLittleRoomIsClear) {
  std::vector<NodeSlot> five;
  for (uint64_t id = 1; id <= 5; ++id) five.push_back({id, 1 << 20, ""});
  auto p = PlaceStripes(five, 6, 1, 1024);
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_NE(p.status().message().find("6 distinct"), std::string::npos) << p.status().message();
  std::vector<NodeSlot> small = {{1, 4096, ""}, {2, 4096, ""}, {3, 1 << 20, ""}};
  auto q = PlaceStripes(small, 3, 8, 1024);  // nodes 1 and 2 fit only 4 stripes
  EXPECT_EQ(q.status().code(), Code::kOutOfCapacity);
}

}  // namespace
}  // namespace tessera::controller
