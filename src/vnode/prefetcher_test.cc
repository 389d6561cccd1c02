#include "vnode/prefetcher.h"

#include <gtest/gtest.h>

namespace tessera::vnode {
namespace {

TEST(PrefetcherTest, FindsTheMajorityDeltaAmongNoise) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  uint64_t page = 1000;
  for (int i = 0; i < 8; ++i) {
    p.OnMiss(page, &plan);
    page += (i % 4 == 3) ? 977 : 3;  // three strides of 3, then a jump
  }
  EXPECT_EQ(p.Trend(), 3);
  p.OnMiss(page, &plan);
  ASSERT_FALSE(plan.pages.empty());
  for (size_t i = 0; i < plan.pages.size(); ++i) EXPECT_EQ(plan.pages[i], page + 3 * (i + 1));
  ASSERT_TRUE(plan.probe.has_value());
}

TEST(PrefetcherTest, FollowsADescendingStrideAndStopsAtTheEdge) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  for (uint64_t page = 100; page >= 60; page -= 8) p.OnMiss(page, &plan);
  EXPECT_EQ(p.Trend(), -8);
  p.OnMiss(12, &plan);
  // 12 - 8 = 4, then the start of the range: nothing below page 0.
  ASSERT_EQ(plan.pages.size(), 1u);
  EXPECT_EQ(plan.pages[0], 4u);
}

TEST(PrefetcherTest, WithoutATrendReadsAheadAndTouchedProbesGrowTheStream) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  p.OnMiss(5000, &plan);
  EXPECT_FALSE(p.Trend().has_value());
  ASSERT_EQ(plan.pages.size(), 4u);  // plain readahead
  EXPECT_EQ(plan.pages.front(), 5001u);
  uint64_t last = plan.pages.back();
  size_t before = plan.pages.size();
  uint64_t probe = plan.pages[*plan.probe];
  p.ProbeChosen(probe);
  p.OnProbeTouched(probe, &plan);
  EXPECT_EQ(plan.pages.size(), 2 * before);  // the window doubled
  EXPECT_EQ(plan.pages.front(), last + 1);   // and the stream went on
  // A probe nobody touched halves the window again.
  p.OnProbeUntouched();
  p.OnMiss(9000, &plan);
  EXPECT_EQ(plan.pages.size(), 4u);
  EXPECT_EQ(p.probes_touched(), 1u);
  EXPECT_EQ(p.probes_untouched(), 1u);
}

TEST(PrefetcherTest, RandomMissesWhoseProbesGoUntouchedStopTheReadahead) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  std::vector<uint64_t> pages = {500, 90210, 7, 31337, 4242, 123456, 77, 999999, 2024, 65536};
  for (uint64_t page : pages) {
    p.OnMiss(page, &plan);
    if (!plan.pages.empty()) p.OnProbeUntouched();
  }
  EXPECT_FALSE(p.Trend().has_value());
  p.OnMiss(31, &plan);
  EXPECT_TRUE(plan.pages.empty());
  // A trend brings it back.
  for (uint64_t page = 1000; page < 1100; page += 5) p.OnMiss(page, &plan);
  EXPECT_EQ(p.Trend(), 5);
  EXPECT_FALSE(plan.pages.empty());
}

TEST(PrefetcherTest, AnOldStreamsProbeDoesNotRestartIt) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  p.OnMiss(10, &plan);
  uint64_t old_probe = plan.pages[*plan.probe];
  p.ProbeChosen(old_probe);
  p.OnMiss(700000, &plan);
  p.ProbeChosen(plan.pages[*plan.probe]);
  p.OnProbeTouched(old_probe, &plan);
  EXPECT_TRUE(plan.pages.empty());
}

}  // namespace
}  // namespace tessera::vnode
