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

TEST(PrefetcherTest, OneMissReadsNothingASecondNearItStartsAStreamThatTouchedProbesGrow) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  p.OnMiss(5000, &plan);
  EXPECT_TRUE(plan.pages.empty());  // one miss shows no locality
  p.OnMiss(5002, &plan);
  ASSERT_EQ(plan.pages.size(), 4u);  // a second within reach does: page by page
  EXPECT_EQ(plan.pages.front(), 5003u);
  uint64_t last = plan.pages.back();
  size_t before = plan.pages.size();
  uint64_t probe = plan.pages[*plan.probe];
  p.ProbeChosen(probe);
  p.OnProbeTouched(probe, &plan);
  EXPECT_EQ(plan.pages.size(), 2 * before);  // the window doubled
  EXPECT_EQ(plan.pages.front(), last + 1);   // and the stream went on
  // A probe nobody touched halves the window, and the stream reads less.
  p.ProbeChosen(plan.pages[*plan.probe]);
  p.OnProbeUntouched(plan.pages[*plan.probe]);
  p.OnMiss(plan.pages.back() + 1, &plan);
  EXPECT_EQ(plan.pages.size(), 4u);
  EXPECT_EQ(p.probes_touched(), 1u);
  EXPECT_EQ(p.probes_untouched(), 1u);
}

TEST(PrefetcherTest, RandomMissesReadNothingAhead) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  std::vector<uint64_t> pages = {500, 90210, 7, 31337, 4242, 123456, 77, 999999, 2024, 65536, 31};
  for (uint64_t page : pages) {
    p.OnMiss(page, &plan);
    EXPECT_TRUE(plan.pages.empty()) << page;
  }
  EXPECT_FALSE(p.Trend().has_value());
  // A trend brings it back.
  for (uint64_t page = 1000; page < 1100; page += 5) p.OnMiss(page, &plan);
  EXPECT_EQ(p.Trend(), 5);
  ASSERT_GE(plan.pages.size(), 2u);
  EXPECT_EQ(plan.pages[1] - plan.pages[0], 5u);
}

TEST(PrefetcherTest, InterleavedStreamsEachReadAheadAndEachProbeGrowsItsOwn) {
  // Misses alternate between three regions (a collector walking pools of
  // three size classes): no delta between consecutive misses repeats, yet
  // every region is read in order.
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  const uint64_t bases[] = {10000, 50000, 90000};
  std::vector<std::vector<uint64_t>> planned(3);
  for (uint64_t step = 0; step < 4; ++step) {
    for (size_t r = 0; r < 3; ++r) {
      p.OnMiss(bases[r] + step * 3, &plan);
      if (step == 0) {
        EXPECT_TRUE(plan.pages.empty());
      }
      if (step > 0) {
        ASSERT_FALSE(plan.pages.empty()) << "region " << r << " step " << step;
        EXPECT_GT(plan.pages.front(), bases[r] + step * 3);
        EXPECT_LT(plan.pages.back(), bases[r] + step * 3 + 64);
        p.ProbeChosen(plan.pages[*plan.probe]);
        planned[r] = plan.pages;
      }
    }
  }
  // Each region's probe continues that region, whichever came last.
  for (size_t r = 0; r < 3; ++r) {
    const std::vector<uint64_t> before = planned[r];
    const uint64_t probe = before[before.size() / 2];
    p.OnProbeTouched(probe, &plan);
    ASSERT_FALSE(plan.pages.empty()) << "region " << r;
    EXPECT_GT(plan.pages.front(), before.back());
    EXPECT_GT(plan.pages.size(), before.size());
    EXPECT_LT(plan.pages.back(), bases[r] + 40000);
  }
}

TEST(PrefetcherTest, AReplacedStreamsProbeDoesNotRestartIt) {
  Prefetcher p(1 << 20, 64);
  PrefetchPlan plan;
  p.OnMiss(10, &plan);
  p.OnMiss(11, &plan);
  ASSERT_FALSE(plan.pages.empty());
  uint64_t old_probe = plan.pages[*plan.probe];
  p.ProbeChosen(old_probe);
  // As many new regions as the table holds, each missed twice: the first
  // stream is the least recently used and gives its place up.
  for (uint64_t r = 1; r <= Prefetcher::kStreams; ++r) {
    p.OnMiss(r * 100000, &plan);
    p.OnMiss(r * 100000 + 1, &plan);
    if (!plan.pages.empty()) p.ProbeChosen(plan.pages[*plan.probe]);
  }
  p.OnProbeTouched(old_probe, &plan);
  EXPECT_TRUE(plan.pages.empty());
}

}  // namespace
}  // namespace tessera::vnode
