#include "memnode/fragment_store.h"

#include <cstring>

#include <gtest/gtest.h>

#include "memnode/memnode.h"

namespace tessera::memnode {
namespace {

using proto::ctl2m::FragmentSpec;

TEST(FragmentStoreTest, AllocateLookupAndFree) {
  FragmentStore s(1 << 20);
  std::vector<FragmentSpec> specs = {{0, 4, 4096}, {3, 4, 4096}};
  ASSERT_TRUE(s.Allocate(7, 0, specs).ok());
  EXPECT_EQ(s.used_bytes(), 8u * 4096);
  Result<SlotView> v = s.Lookup(7, 3, 2);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size, 4096u);
  EXPECT_EQ(v->data[100], 0) << "unwritten slots read as zeros";
  EXPECT_EQ(s.Lookup(7, 1, 0).status().code(), Code::kNotFound) << "fragment held elsewhere";
  EXPECT_EQ(s.Lookup(8, 0, 0).status().code(), Code::kNotFound);
  EXPECT_EQ(s.Lookup(7, 0, 4).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.FreeRegion(7), 8u * 4096);
  EXPECT_EQ(s.used_bytes(), 0u);
  EXPECT_EQ(s.FreeRegion(7), 0u) << "freeing twice is harmless";
}

TEST(FragmentStoreTest, AllocationIsAllOrNothing) {
  FragmentStore s(10 * 4096);
  std::vector<FragmentSpec> too_big = {{0, 8, 4096}, {1, 8, 4096}};
  Status st = s.Allocate(1, 0, too_big);
  EXPECT_EQ(st.code(), Code::kOutOfCapacity);
  EXPECT_NE(st.message().find("free"), std::string::npos);
  EXPECT_EQ(s.used_bytes(), 0u);
  EXPECT_EQ(s.region_count(), 0u);
  std::vector<FragmentSpec> dup = {{0, 1, 4096}, {0, 1, 4096}};
  EXPECT_EQ(s.Allocate(1, 0, dup).code(), Code::kInvalidArgument);
  std::vector<FragmentSpec> one = {{0, 1, 4096}};
  ASSERT_TRUE(s.Allocate(1, 0, one).ok());
  EXPECT_EQ(s.Allocate(1, 0, one).code(), Code::kAlreadyExists);
  EXPECT_EQ(s.used_bytes(), 4096u);
}

TEST(FragmentStoreTest, CloneCopiesContentAndLeavesEachSideItsOwn) {
  FragmentStore s(64 * 4096);
  std::vector<FragmentSpec> specs = {{0, 4, 4096}, {5, 4, 4096}};
  ASSERT_TRUE(s.Allocate(1, 0, specs).ok());
  Result<SlotView> v = s.Lookup(1, 5, 2);
  ASSERT_TRUE(v.ok());
  std::memset(v->data, 0xab, v->size);
  *v->crc = 77;
  *v->version = 9;
  const uint32_t both[] = {0, 5};
  ASSERT_TRUE(s.Clone(2, 3, 1, both).ok());
  EXPECT_EQ(s.used_bytes(), 16u * 4096);
  Result<SlotView> c = s.Lookup(2, 5, 2);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data[4095], 0xab);
  EXPECT_EQ(*c->crc, 77u);
  EXPECT_EQ(*c->version, 9u);
  EXPECT_EQ(s.Lookup(2, 5, 1)->data[0], 0) << "unwritten slots stay zeros";
  std::memset(c->data, 0xcd, c->size);
  EXPECT_EQ(s.Lookup(1, 5, 2)->data[0], 0xab) << "the copy is not shared";
  EXPECT_TRUE(s.AdmitEpoch(2, 3).ok());

  const uint32_t missing[] = {0, 1};
  EXPECT_EQ(s.Clone(3, 0, 1, missing).code(), Code::kNotFound) << "fragment 1 is not here";
  EXPECT_EQ(s.Clone(3, 0, 4, both).code(), Code::kNotFound) << "no such source";
  EXPECT_EQ(s.Clone(1, 0, 1, both).code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Clone(2, 0, 1, both).code(), Code::kAlreadyExists);
  FragmentStore small(12 * 4096);
  ASSERT_TRUE(small.Allocate(1, 0, specs).ok());
  EXPECT_EQ(small.Clone(2, 0, 1, both).code(), Code::kOutOfCapacity);
  EXPECT_EQ(small.region_count(), 1u) << "a failed clone keeps nothing";
}

TEST(FragmentStoreTest, AHugeFragmentNumberCostsNothingExtra) {
  // Found by fuzz_memnode: the store once sized a table by fragment number.
  FragmentStore s(1 << 20);
  std::vector<FragmentSpec> far = {{0xFFFFFFF0u, 1, 4096}};
  ASSERT_TRUE(s.Allocate(3, 0, far).ok());
  EXPECT_TRUE(s.Lookup(3, 0xFFFFFFF0u, 0).ok());
  EXPECT_EQ(s.Lookup(3, 0, 0).status().code(), Code::kNotFound);
  EXPECT_LT(CurrentRssBytes(), 512ull << 20);
}

// A region is sized for the most a program may use (tessera run: --heap), so
// what it never writes must cost nothing: data and per-slot metadata alike.
TEST(FragmentStoreTest, AnUnwrittenFragmentCostsNoMemory) {
  constexpr uint32_t kSlots = 4u << 20;  // 4 GiB of 1 KiB shares, 64 MiB of metadata
  FragmentStore s(8ull << 30);
  const uint64_t before = CurrentRssBytes();
  std::vector<FragmentSpec> specs = {{0, kSlots, 1024}};
  ASSERT_TRUE(s.Allocate(1, 0, specs).ok());
  for (uint32_t slot = 0; slot < kSlots; slot += kSlots / 64) {
    Result<SlotView> v = s.Lookup(1, 0, slot);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v->version, 0u);
  }
  EXPECT_LT(CurrentRssBytes(), before + (8ull << 20));
  EXPECT_EQ(s.FreeRegion(1), uint64_t{kSlots} * 1024);
}

TEST(FragmentStoreTest, FreeingGivesMemoryBackToTheOs) {
  constexpr uint32_t kSlots = 64 * 256;  // 64 MiB
  FragmentStore s(1ull << 30);
  std::vector<FragmentSpec> specs;
  for (uint32_t f = 0; f < 64; ++f) specs.push_back({f, 256, 4096});
  ASSERT_TRUE(s.Allocate(1, 0, specs).ok());
  uint64_t before = CurrentRssBytes();
  for (uint32_t i = 0; i < kSlots; ++i) {
    SlotView v = *s.Lookup(1, i / 256, i % 256);
    std::memset(v.data, 0xab, v.size);
  }
  uint64_t filled = CurrentRssBytes();
  EXPECT_GT(filled, before + (48ull << 20));
  s.FreeRegion(1);
  EXPECT_LT(CurrentRssBytes(), filled - (48ull << 20));
}

}  // namespace
}  // namespace tessera::memnode
