#include "memnode/version_limit.h"

#include <gtest/gtest.h>

#include "proto/c2m.h"

namespace tessera::memnode {
namespace {

uint64_t At(uint64_t us) { return us << proto::c2m::kVersionNonceBits | 0xFFF; }

TEST(VersionLimitTest, RefusesOnlyVersionsPastTheLimitAndNamesBothClocks) {
  uint64_t now = 1'796'000'000'000'000;
  VersionLimit limit{.max_ahead_us = 2'000'000, .now_us = [&] { return now; }};
  EXPECT_TRUE(limit.Admit(0).ok());
  EXPECT_TRUE(limit.Admit(At(now - 3'600'000'000ull)).ok()) << "the past is always fine";
  EXPECT_TRUE(limit.Admit(At(now + 2'000'000)).ok());
  Status s = limit.Admit(At(now + 3'600'000'000ull));
  EXPECT_EQ(s.code(), Code::kClockSkew);
  EXPECT_NE(s.message().find("1.0 h ahead"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at most 2.0 s"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("2026-"), std::string::npos) << s.message();
  EXPECT_EQ(limit.Admit(~0ull).code(), Code::kClockSkew);
  now += 3'600'000'000ull;  // this node's clock catches up
  EXPECT_TRUE(limit.Admit(At(now)).ok());
}

TEST(VersionLimitTest, TheDefaultReadsTheWallClock) {
  VersionLimit limit;
  EXPECT_TRUE(limit.Admit(At(1'796'000'000'000'000)).ok());
  EXPECT_EQ(limit.Admit(At(4'000'000'000'000'000)).code(), Code::kClockSkew) << "the year 2096";
}

}  // namespace
}  // namespace tessera::memnode
