#include "proto/redundancy.h"

#include <gtest/gtest.h>

namespace tessera::proto {
namespace {

TEST(RedundancyTest, ParsesAndPrintsEveryScheme) {
  for (const char* s : {"none", "replicas:2", "replicas:3", "ec:4+2", "ec:8+3", "ec:1+1"}) {
    Result<Redundancy> r = ParseRedundancy(s);
    ASSERT_TRUE(r.ok()) << s << ": " << r.status().ToString();
    EXPECT_EQ(r->ToString(), s);
  }
}

TEST(RedundancyTest, OverheadAndTolerance) {
  EXPECT_DOUBLE_EQ(ParseRedundancy("ec:4+2")->overhead(), 1.5);
  EXPECT_EQ(ParseRedundancy("ec:4+2")->tolerates(), 2);
  EXPECT_EQ(ParseRedundancy("ec:4+2")->width(), 6);
  EXPECT_DOUBLE_EQ(ParseRedundancy("replicas:3")->overhead(), 3.0);
  EXPECT_EQ(ParseRedundancy("replicas:3")->tolerates(), 2);
  EXPECT_DOUBLE_EQ(ParseRedundancy("none")->overhead(), 1.0);
  EXPECT_EQ(ParseRedundancy("none")->tolerates(), 0);
}

TEST(RedundancyTest, RejectsJunkWithTheInputQuoted) {
  for (const char* s : {"", "ec", "ec:4", "ec:4+", "ec:+2", "ec:0+2", "ec:4+0", "ec:30+3", "ec:4+2x",
                        "replicas:1", "replicas:9", "replicas:", "raid5", "ec:-1+2"}) {
    Result<Redundancy> r = ParseRedundancy(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_NE(r.status().message().find(std::string("'") + s + "'"), std::string::npos);
  }
}

}  // namespace
}  // namespace tessera::proto
