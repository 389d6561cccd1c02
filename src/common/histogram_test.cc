#include "common/histogram.h"

#include <gtest/gtest.h>

namespace tessera {
namespace {

TEST(HistogramTest, PercentilesWithinResolution) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_NEAR(static_cast<double>(h.Percentile(50)), 50000, 50000 * 0.02);
  EXPECT_NEAR(static_cast<double>(h.Percentile(99)), 99000, 99000 * 0.02);
  EXPECT_EQ(h.Percentile(100), 100000u);
}

TEST(HistogramTest, EmptyAndMerge) {
  LatencyHistogram a, b;
  EXPECT_EQ(a.Percentile(50), 0u);
  a.Record(10);
  b.Record(30);
  a.Merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.max(), 30u);
  EXPECT_EQ(a.Percentile(0), 10u);
}

}  // namespace
}  // namespace tessera
