#include "preload/heap.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace tessera::preload {
namespace {

std::atomic<uint64_t> g_discarded{0};
void CountingDiscard(void* addr, size_t len) {
  madvise(addr, len, MADV_DONTNEED);
  g_discarded.fetch_add(len);
}

class HeapTest : public ::testing::Test {
 protected:
  static constexpr size_t kBytes = 256ull << 20;
  void SetUp() override {
    base_ = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(base_, MAP_FAILED);
    auto h = ManagedHeap::Create(base_, kBytes, CountingDiscard);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    heap_ = std::move(*h);
  }
  void TearDown() override {
    heap_.reset();
    munmap(base_, kBytes);
  }
  void* base_ = nullptr;
  std::unique_ptr<ManagedHeap> heap_;
};

TEST_F(HeapTest, SizesAlignmentAndUsableSize) {
  for (size_t n : {0ul, 1ul, 16ul, 17ul, 129ul, 1000ul, 4096ul, 4097ul, 16384ul, 16385ul, 1ul << 20}) {
    void* p = heap_->Malloc(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(heap_->Owns(p));
    EXPECT_GE(heap_->UsableSize(p), n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << n;
    std::memset(p, 0xab, n);
    heap_->Free(p);
  }
  for (size_t align : {32ul, 64ul, 512ul, 4096ul, 65536ul, 1ul << 21}) {
    for (size_t n : {1ul, 100ul, 5000ul, 70000ul}) {
      void* p = heap_->Memalign(align, n);
      ASSERT_NE(p, nullptr) << align << " " << n;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align << " " << n;
      EXPECT_GE(heap_->UsableSize(p), n);
      std::memset(p, 1, n);
      heap_->Free(p);
    }
  }
  EXPECT_EQ(heap_->live_bytes(), 0u);
}

TEST_F(HeapTest, MappedPagesAreZeroAndUnmapInPieces) {
  auto* p = static_cast<uint8_t*>(heap_->MapPages(64 * 4096));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 64 * 4096; ++i) ASSERT_EQ(p[i], 0) << i;
  std::memset(p, 7, 64 * 4096);
  // Punch the middle, then the ends: each piece is freed (and discarded).
  uint64_t before = g_discarded.load();
  EXPECT_TRUE(heap_->UnmapPages(p + 10 * 4096, 20 * 4096));
  EXPECT_EQ(g_discarded.load() - before, 20u * 4096);
  EXPECT_EQ(p[9 * 4096], 7);
  EXPECT_EQ(p[30 * 4096], 7);
  EXPECT_FALSE(heap_->UnmapPages(p + 10 * 4096, 4096));  // not mapped any more
  EXPECT_TRUE(heap_->UnmapPages(p, 10 * 4096));
  EXPECT_TRUE(heap_->UnmapPages(p + 30 * 4096, 34 * 4096));
  EXPECT_EQ(heap_->live_bytes(), 0u);
  // Freed pages come back zeroed.
  auto* q = static_cast<uint8_t*>(heap_->MapPages(64 * 4096));
  ASSERT_NE(q, nullptr);
  for (size_t i = 0; i < 64 * 4096; i += 512) ASSERT_EQ(q[i], 0) << i;
  // malloc'd memory is not mapped pages.
  void* m = heap_->Malloc(100000);
  EXPECT_FALSE(heap_->UnmapPages(m, 100000));
}

TEST_F(HeapTest, ResizeGrowsIntoFollowingFreePagesAndShrinksInPlace) {
  auto* a = static_cast<uint8_t*>(heap_->Malloc(5 * 4096));
  ASSERT_NE(a, nullptr);
  std::memset(a, 3, 5 * 4096);
  // At the top: grows into untouched pages, content kept.
  ASSERT_TRUE(heap_->Resize(a, 9 * 4096 - 100));
  EXPECT_EQ(heap_->UsableSize(a), 9u * 4096);
  EXPECT_EQ(heap_->live_bytes(), 9u * 4096);
  EXPECT_EQ(a[5 * 4096 - 1], 3);
  EXPECT_EQ(a[9 * 4096 - 1], 0);
  // Blocked by the allocation after it: nothing changes.
  auto* b = static_cast<uint8_t*>(heap_->Malloc(6 * 4096));
  ASSERT_EQ(b, a + 9 * 4096);
  EXPECT_FALSE(heap_->Resize(a, 10 * 4096));
  EXPECT_EQ(heap_->UsableSize(a), 9u * 4096);
  // Shrinking hands the tail back at once, discarded; a grows into it again
  // (it is zero) and, with b freed, into b's pages and past them.
  uint64_t before = g_discarded.load();
  ASSERT_TRUE(heap_->Resize(a, 2 * 4096));
  EXPECT_EQ(g_discarded.load() - before, 7u * 4096);
  EXPECT_EQ(heap_->UsableSize(a), 2u * 4096);
  EXPECT_EQ(a[2 * 4096 - 1], 3);
  heap_->Free(b);
  ASSERT_TRUE(heap_->Resize(a, 20 * 4096));
  for (size_t i = 2 * 4096; i < 20 * 4096; i += 512) ASSERT_EQ(a[i], 0) << i;
  EXPECT_EQ(heap_->live_bytes(), 20u * 4096);
  // Only the start of a large span resizes.
  void* small = heap_->Malloc(100);
  EXPECT_FALSE(heap_->Resize(small, 8192));
  EXPECT_FALSE(heap_->Resize(a + 4096, 8192));
  heap_->Free(small);
  heap_->Free(a);
  EXPECT_EQ(heap_->live_bytes(), 0u);
  // Everything coalesced: the whole range is one span again.
  EXPECT_NE(heap_->MapPages(kBytes), nullptr);
}

TEST_F(HeapTest, AGrownMappingUnmapsInPiecesLikeAnyOther) {
  auto* p = static_cast<uint8_t*>(heap_->MapPages(4 * 4096));
  ASSERT_NE(p, nullptr);
  std::memset(p, 9, 4 * 4096);
  ASSERT_TRUE(heap_->Resize(p, 12 * 4096));
  EXPECT_TRUE(heap_->UnmapPages(p + 6 * 4096, 2 * 4096));  // a piece of the grown part
  EXPECT_TRUE(heap_->UnmapPages(p, 6 * 4096));
  EXPECT_TRUE(heap_->UnmapPages(p + 8 * 4096, 4 * 4096));
  EXPECT_FALSE(heap_->UnmapPages(p + 8 * 4096, 4096));
  EXPECT_EQ(heap_->live_bytes(), 0u);
}

TEST_F(HeapTest, FullRangeFailsThenEverythingFreedCoalesces) {
  std::vector<void*> all;
  for (;;) {
    void* p = heap_->Malloc(3 << 20);
    if (p == nullptr) break;
    all.push_back(p);
  }
  EXPECT_EQ(all.size(), kBytes / (3 << 20));
  EXPECT_EQ(heap_->Malloc(2 << 20), nullptr);  // 1 MiB is left
  for (void* p : all) heap_->Free(p);
  // Freed spans merged back into one: the whole range fits in one request.
  void* whole = heap_->MapPages(kBytes);
  EXPECT_NE(whole, nullptr);
}

// Threads allocate, fill, check, resize and free objects of every size class
// and of whole pages at random, keeping some across iterations; every byte checked.
TEST_F(HeapTest, ConcurrentAllocationsNeverOverlap) {
  constexpr int kThreads = 8;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      struct Block {
        uint8_t* p;
        size_t n;
        uint8_t tag;
      };
      std::vector<Block> live;
      for (int op = 0; op < 20000; ++op) {
        if (live.size() < 200 && rng() % 3 != 0) {
          size_t n = (rng() % 10 == 0) ? 16384 + rng() % 200000 : 1 + rng() % 4000;
          auto* p = static_cast<uint8_t*>(rng() % 8 == 0 ? heap_->Memalign(64, n) : heap_->Malloc(n));
          if (p == nullptr) continue;
          uint8_t tag = static_cast<uint8_t>(rng());
          std::memset(p, tag, n);
          live.push_back({p, n, tag});
        } else if (!live.empty()) {
          size_t i = rng() % live.size();
          for (size_t k = 0; k < live[i].n; k += 61) {
            if (live[i].p[k] != live[i].tag) bad.fetch_add(1);
          }
          if (live[i].p[live[i].n - 1] != live[i].tag) bad.fetch_add(1);
          // Large blocks sometimes grow or shrink in place instead (realloc).
          size_t to = 16385 + rng() % 200000;
          if (live[i].n > 16384 && rng() % 2 == 0 && heap_->Resize(live[i].p, to)) {
            live[i].n = to;
            std::memset(live[i].p, live[i].tag, to);
            continue;
          }
          heap_->Free(live[i].p);
          live[i] = live.back();
          live.pop_back();
        }
      }
      for (Block& b : live) heap_->Free(b.p);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(heap_->live_bytes(), 0u);
  EXPECT_GT(heap_->peak_bytes(), 0u);
}

}  // namespace
}  // namespace tessera::preload
