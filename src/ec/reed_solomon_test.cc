#include "ec/reed_solomon.h"

#include <bit>
#include <random>

#include <gtest/gtest.h>

namespace tessera::ec {
namespace {

using Fragments = std::vector<std::vector<uint8_t>>;

Fragments EncodeRandom(const ReedSolomon& rs, size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  Fragments f(static_cast<size_t>(rs.k() + rs.m()), std::vector<uint8_t>(len));
  std::vector<const uint8_t*> data;
  std::vector<uint8_t*> parity;
  for (int i = 0; i < rs.k(); ++i) {
    for (auto& b : f[i]) b = static_cast<uint8_t>(rng());
    data.push_back(f[i].data());
  }
  for (int i = rs.k(); i < rs.k() + rs.m(); ++i) parity.push_back(f[i].data());
  rs.Encode(len, data, parity);
  return f;
}

// Loses every pattern of up to m fragments and checks all come back exactly.
void CheckEveryLossPattern(int k, int m) {
  auto rs = ReedSolomon::Create(k, m);
  ASSERT_TRUE(rs.ok());
  const size_t len = 1024;
  Fragments want = EncodeRandom(**rs, len, static_cast<uint32_t>(k * 100 + m));
  const int n = k + m;
  for (uint32_t mask = 1; mask < (1u << n); ++mask) {
    if (std::popcount(mask) > m) continue;
    Fragments got = want;
    std::vector<uint8_t*> ptrs;
    bool present[ReedSolomon::kMaxFragments];
    for (int i = 0; i < n; ++i) {
      present[i] = !(mask >> i & 1);
      if (!present[i]) std::fill(got[i].begin(), got[i].end(), 0xEE);
      ptrs.push_back(got[i].data());
    }
    ASSERT_TRUE((*rs)->Reconstruct(len, ptrs, std::span<const bool>(present, n)).ok()) << "mask " << mask;
    ASSERT_EQ(got, want) << k << "+" << m << " loss mask " << mask;
  }
}

TEST(ReedSolomonTest, RecoversEveryPatternOfUpToMLosses) {
  CheckEveryLossPattern(4, 2);
  CheckEveryLossPattern(8, 3);
  CheckEveryLossPattern(2, 1);
}

TEST(ReedSolomonTest, TooManyLossesIsAnErrorThatTouchesNothing) {
  auto rs = ReedSolomon::Create(4, 2);
  ASSERT_TRUE(rs.ok());
  Fragments f = EncodeRandom(**rs, 64, 1);
  Fragments before = f;
  std::vector<uint8_t*> ptrs;
  for (auto& x : f) ptrs.push_back(x.data());
  bool present[] = {false, true, false, true, false, true};
  Status s = (*rs)->Reconstruct(64, ptrs, present);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("3 of 6"), std::string::npos) << s.message();
  EXPECT_EQ(f, before);
}

TEST(ReedSolomonTest, ADeltaUpdateEqualsReencoding) {
  auto rs = ReedSolomon::Create(4, 2);
  ASSERT_TRUE(rs.ok());
  const size_t len = 4096;
  Fragments f = EncodeRandom(**rs, len, 3);
  std::vector<uint8_t> fresh(len), delta(len);
  std::mt19937 rng(9);
  for (size_t i = 0; i < len; ++i) {
    fresh[i] = static_cast<uint8_t>(rng());
    delta[i] = fresh[i] ^ f[2][i];
  }
  std::vector<uint8_t*> parity = {f[4].data(), f[5].data()};
  (*rs)->ApplyDelta(len, 2, delta.data(), parity);
  f[2] = fresh;
  Fragments again = f;
  std::vector<const uint8_t*> data = {again[0].data(), again[1].data(), again[2].data(), again[3].data()};
  std::vector<uint8_t*> reparity = {again[4].data(), again[5].data()};
  (*rs)->Encode(len, data, reparity);
  EXPECT_EQ(f[4], again[4]);
  EXPECT_EQ(f[5], again[5]);
}

TEST(ReedSolomonTest, RejectsBadShapes) {
  EXPECT_EQ(ReedSolomon::Create(0, 2).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReedSolomon::Create(30, 3).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(ReedSolomon::Create(1, 0).ok());
}

}  // namespace
}  // namespace tessera::ec
