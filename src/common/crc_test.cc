#include "common/crc.h"

#include <cstring>

#include <gtest/gtest.h>

namespace tessera {
namespace {

TEST(CrcTest, MatchesTheCrc32cCheckValue) {
  // The standard check value of CRC-32C over "123456789".
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
}

TEST(CrcTest, DetectsAFlippedBit) {
  char page[4096];
  std::memset(page, 0x5a, sizeof page);
  uint32_t before = Crc32c(page, sizeof page);
  page[1234] ^= 0x10;
  EXPECT_NE(Crc32c(page, sizeof page), before);
}

}  // namespace
}  // namespace tessera
