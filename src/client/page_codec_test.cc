#include "client/page_codec.h"

#include <bit>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace tessera::client {
namespace {

// Splits a random page, drops every pattern of up to m shares, joins.
void RoundTripEveryLossPattern(const proto::Redundancy& r, uint32_t page_size) {
  auto codec = PageCodec::Create(r, page_size);
  ASSERT_TRUE(codec.ok()) << codec.status().ToString();
  const PageCodec& c = **codec;
  std::mt19937 rng(r.k * 100 + r.m);
  std::vector<uint8_t> page(page_size);
  for (auto& b : page) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> scratch(c.scratch_bytes());
  const uint8_t* share[proto::Redundancy::kMaxWidth];
  c.Split(page.data(), scratch.data(), share);
  const uint32_t all = (1u << c.width()) - 1;
  for (uint32_t have = 0; have <= all; ++have) {
    // What a reader gathers: the shares it got, in slot-sized cells.
    std::vector<uint8_t> cells(static_cast<size_t>(c.width()) * c.slot_size(), 0xEE);
    for (int j = 0; j < c.width(); ++j) {
      if ((have >> j) & 1) std::memcpy(cells.data() + static_cast<size_t>(j) * c.slot_size(), share[j], c.slot_size());
    }
    std::vector<uint8_t> out(page_size, 0);
    Status s = c.Join(cells.data(), have, out.data());
    if (std::popcount(have) >= c.k()) {
      ASSERT_TRUE(s.ok()) << r.ToString() << " have " << have << ": " << s.ToString();
      ASSERT_EQ(out, page) << r.ToString() << " have " << have;
    } else {
      EXPECT_EQ(s.code(), Code::kDataLoss) << r.ToString() << " have " << have;
    }
  }
}

TEST(PageCodecTest, AnyKSharesGiveThePageBack) {
  RoundTripEveryLossPattern(proto::Redundancy::None(), 4096);
  RoundTripEveryLossPattern(proto::Redundancy::Replicas(3), 4096);
  RoundTripEveryLossPattern(proto::Redundancy::Erasure(4, 2), 4096);
  RoundTripEveryLossPattern(proto::Redundancy::Erasure(8, 3), 4096);
  RoundTripEveryLossPattern(proto::Redundancy::Erasure(3, 2), 4096);  // 4096 does not cut in 3: padded
  RoundTripEveryLossPattern(proto::Redundancy::Erasure(6, 3), 512);
}

TEST(PageCodecTest, SharesPointIntoThePageWhenTheyCan) {
  auto codec = PageCodec::Create(proto::Redundancy::Erasure(4, 2), 4096);
  ASSERT_TRUE(codec.ok());
  std::vector<uint8_t> page(4096, 7), scratch((*codec)->scratch_bytes());
  const uint8_t* share[6];
  (*codec)->Split(page.data(), scratch.data(), share);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(share[j], page.data() + j * 1024) << "data share " << j << " was copied";
  EXPECT_EQ((*PageCodec::Create(proto::Redundancy::Replicas(2), 4096))->scratch_bytes(), 0u);
}

}  // namespace
}  // namespace tessera::client
