#include "client/version_clock.h"

#include <gtest/gtest.h>

namespace tessera::client {
namespace {

using proto::c2m::VersionMicros;

TEST(VersionClockTest, VersionsGrowEvenWhenTheWallClockStepsBack) {
  uint64_t now = 1'000'000;
  VersionClock clock([&] { return now; });
  uint64_t a = clock.Next(), b = clock.Next();
  EXPECT_GT(b, a);
  EXPECT_EQ(VersionMicros(a), 1'000'000u);
  now = 500'000;  // NTP stepped the clock back
  uint64_t c = clock.Next();
  EXPECT_GT(c, b);
  now = 2'000'000;
  EXPECT_EQ(VersionMicros(clock.Next()), 2'000'000u) << "a clock ahead of every version is used as it is";
}

// A client whose clock is behind catches up with the first version it sees.
TEST(VersionClockTest, AVersionSeenFromAClockAheadPutsEveryLaterVersionAboveIt) {
  uint64_t now = 1'000'000;
  VersionClock behind([&] { return now; });
  const uint64_t ahead = (now + 3'600'000'000ull) << proto::c2m::kVersionNonceBits | 0xFFF;
  EXPECT_LT(behind.Next(), ahead);
  behind.Observe(ahead);
  uint64_t v = behind.Next();
  EXPECT_GT(v, ahead) << "above it, whatever the nonces";
  EXPECT_GT(behind.Next(), v);
  behind.Observe(1);  // an older version changes nothing
  EXPECT_EQ(VersionMicros(behind.Next()), VersionMicros(ahead) + 3);
}

TEST(VersionClockTest, TwoClientsDifferInTheSameMicrosecond) {
  // Nonces are random: across 64 pairs at least one differs in the low bits.
  int differ = 0;
  for (int i = 0; i < 64; ++i) {
    VersionClock a([] { return uint64_t{7}; }), b([] { return uint64_t{7}; });
    differ += a.Next() != b.Next();
  }
  EXPECT_GT(differ, 0);
}

}  // namespace
}  // namespace tessera::client
