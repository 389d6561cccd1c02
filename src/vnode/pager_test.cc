#include "vnode/pager.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "vnode/fake_queue.h"
#include "vnode/stress.h"

namespace tessera::vnode {
namespace {

using stress::Fill;
using stress::kPage;
using stress::VersionOf;

struct Mapped {
  std::shared_ptr<FakePool> pool = std::make_shared<FakePool>(kPage);
  std::unique_ptr<Pager> pager;
  uint8_t* base = nullptr;
  uint8_t* Page(uint64_t p) const { return base + p * kPage; }
};

Mapped MapWith(const PagerOptions& o, uint64_t pages, uint64_t latency_ns = 20'000) {
  Mapped m;
  auto pager = Pager::Start(o, std::make_unique<FakeQueue>(m.pool, kPage, latency_ns), pages);
  EXPECT_TRUE(pager.ok()) << pager.status().ToString();
  if (!pager.ok()) return m;
  m.pager = std::move(*pager);
  m.base = static_cast<uint8_t*>(m.pager->base());
  return m;
}

Mapped Map(uint64_t pages, uint64_t cache_pages, uint64_t latency_ns = 20'000, const std::string& policy = "clock",
           bool prefetch = true) {
  return MapWith({.cache_bytes = cache_pages * kPage, .policy = policy, .prefetch = prefetch}, pages, latency_ns);
}

TEST(PagerTest, NeverWrittenPagesReadAsZerosWithoutARoundTrip) {
  Mapped m = Map(512, 64);
  ASSERT_NE(m.base, nullptr);
  for (int pass = 0; pass < 2; ++pass) {
    for (uint64_t p = 0; p < 512; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), 0u) << "page " << p;
  }
  PagerStats s = m.pager->Stats();
  EXPECT_EQ(m.pool->reads(), 0u);
  EXPECT_EQ(m.pool->writes(), 0u);  // zeros are never written back
  EXPECT_EQ(s.zero_fills, 1024u);
  EXPECT_LE(s.peak_used_bytes, 64 * kPage);
}

TEST(PagerTest, WrittenPagesSurviveEvictionAndOnlyChangedOnesAreWrittenBack) {
  constexpr uint64_t kPages = 1024, kCache = 64;
  Mapped m = Map(kPages, kCache);
  ASSERT_NE(m.base, nullptr);
  for (uint64_t p = 0; p < kPages; ++p) Fill(m.Page(p), p, 1);
  for (uint64_t p = 0; p < kPages; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), 1u) << "page " << p;
  uint64_t writes_after_fill = m.pool->writes();
  EXPECT_GE(writes_after_fill, kPages - kCache);
  // Pages that are only read come back clean and leave without a write.
  for (int pass = 0; pass < 2; ++pass) {
    for (uint64_t p = 0; p < kPages; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), 1u) << "page " << p;
  }
  EXPECT_EQ(m.pool->writes(), writes_after_fill);
  // Rewriting every other page writes exactly those back.
  for (uint64_t p = 0; p < kPages; p += 2) Fill(m.Page(p), p, 2);
  for (uint64_t p = 0; p < kPages; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), p % 2 == 0 ? 2u : 1u) << "page " << p;
  EXPECT_LE(m.pool->writes() - writes_after_fill, kPages / 2);
  EXPECT_GE(m.pool->writes() - writes_after_fill, kPages / 2 - kCache);
  PagerStats s = m.pager->Stats();
  EXPECT_LE(s.peak_used_bytes, kCache * kPage);
  EXPECT_GT(s.clean_drops, 0u);
}

// A page brought back while its write is in flight, then changed back to
// what it held when it came in, is written again: the pool is about to hold
// the newer content, so the older one is not "clean" any more.
TEST(PagerTest, APageChangedBackAfterItsWriteIsWrittenAgain) {
  constexpr uint64_t kPages = 1024, kCache = 64;
  Mapped m = Map(kPages, kCache);
  ASSERT_NE(m.base, nullptr);
  uint64_t fresh = 1;  // never-written pages, read to push page 0 out
  auto push_out = [&] {
    for (uint64_t end = fresh + 4 * kCache; fresh < end; ++fresh) ASSERT_EQ(VersionOf(m.Page(fresh), fresh), 0u);
  };
  Fill(m.Page(0), 0, 1);
  push_out();
  for (int i = 0; i < 10'000 && m.pager->Stats().pages_written == 0; ++i) usleep(1000);
  ASSERT_EQ(m.pager->Stats().pages_written, 1u);
  ASSERT_EQ(VersionOf(m.Page(0), 0), 1u);  // from the pool: version 1 is what came in
  m.pool->HoldWrites(true);
  Fill(m.Page(0), 0, 2);
  push_out();  // page 0's write of version 2 is in flight, and held
  ASSERT_EQ(VersionOf(m.Page(0), 0), 2u);  // back from the write's copy
  Fill(m.Page(0), 0, 1);
  push_out();
  m.pool->HoldWrites(false);
  EXPECT_EQ(VersionOf(m.Page(0), 0), 1u);
  EXPECT_GE(m.pager->Stats().rescues, 1u);
}

TEST(PagerTest, DiscardedPagesReadBackAsZeros) {
  constexpr uint64_t kPages = 512;
  Mapped m = Map(kPages, 32);
  ASSERT_NE(m.base, nullptr);
  for (uint64_t p = 0; p < kPages; ++p) Fill(m.Page(p), p, 7);
  // Pages resident, staged, being written and in the pool alike.
  ASSERT_EQ(madvise(m.Page(100), 300 * kPage, MADV_DONTNEED), 0);
  for (uint64_t p = 0; p < kPages; ++p) {
    ASSERT_EQ(VersionOf(m.Page(p), p), (p >= 100 && p < 400) ? 0u : 7u) << "page " << p;
  }
  // The pool gives back what it held of them (releases complete as the
  // pager goes on: touch pages until they have).
  auto held = [&] {
    uint64_t n = 0;
    for (uint64_t p = 100; p < 400; ++p) n += m.pool->holds(p);
    return n;
  };
  for (int i = 0; i < 500 && held() > 0; ++i) {
    for (uint64_t p = 0; p < 100; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), 7u);
  }
  EXPECT_EQ(held(), 0u);
  EXPECT_GT(m.pager->Stats().pages_released, 200u);
  EXPECT_TRUE(m.pool->holds(450)) << "pages the program kept stay";
}

// While writes are deferred (a forked child reads the pool's pages), pages
// leave the cache only when a fault waits for room: a full cache stays full
// while the program idles, and evicts as usual once writes are not deferred.
TEST(PagerTest, DeferredWritesWaitForAFaultThatNeedsRoom) {
  constexpr uint64_t kPages = 512, kCache = 64;
  std::atomic<bool> defer{true};
  Mapped m = MapWith({.cache_bytes = kCache * kPage, .defer_writes = [&defer] { return defer.load(); }}, kPages);
  ASSERT_NE(m.base, nullptr);
  for (uint64_t p = 0; p < kCache; ++p) Fill(m.Page(p), p, 1);
  EXPECT_EQ(m.pager->Stats().evictions, 0u) << "the cache has room for every page so far";
  EXPECT_EQ(m.pool->writes(), 0u);
  for (uint64_t p = kCache; p < kPages; ++p) Fill(m.Page(p), p, 1);
  EXPECT_GE(m.pager->Stats().evictions, kPages - kCache) << "faults that wait for room get it";
  defer = false;
  for (uint64_t p = 0; p < kPages; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), 1u) << "page " << p;
  EXPECT_GE(m.pool->writes(), kPages - kCache);
  EXPECT_LE(m.pager->Stats().peak_used_bytes, kCache * kPage);
}

TEST(PagerTest, ManyThreadsFaultingOnOnePageAllWake) {
  Mapped m = Map(1024, 32, 200'000);
  ASSERT_NE(m.base, nullptr);
  for (uint64_t p = 0; p < 1024; ++p) Fill(m.Page(p), p, 3);
  constexpr int kThreads = 16;
  for (uint64_t target : {0ull, 5ull, 900ull}) {  // evicted to the pool by now
    std::barrier sync(kThreads);
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        sync.arrive_and_wait();
        if (VersionOf(m.Page(target), target) == 3) good.fetch_add(1);
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(good.load(), kThreads) << "page " << target;
  }
}

// Many threads fault, write, read and discard concurrently under a cache a
// fraction of the data, every byte checked (stress.h); several threads often
// fault on one page at once.
void Stress(const std::string& policy, uint32_t seed) {
  const stress::Options o{.seed = seed};
  constexpr uint64_t kCache = 96;
  Mapped m = Map(o.pages, kCache, 10'000, policy);
  ASSERT_NE(m.base, nullptr);
  EXPECT_EQ(stress::Run(m.base, o), "");
  PagerStats s = m.pager->Stats();
  EXPECT_LE(s.peak_used_bytes, kCache * kPage);
  EXPECT_GT(s.evictions, o.pages);
  EXPECT_GT(s.pages_written, 0u);
  EXPECT_GT(s.remote_faults, 0u);
}

TEST(PagerTest, StressClock) {
  for (uint32_t seed = 1; seed <= 3; ++seed) Stress("clock", seed);
}

TEST(PagerTest, StressFifo) { Stress("fifo", 9); }

// A stream is read in runs, one request per run of adjacent pages, whether
// it goes up or down (a sort's partition scans both ways).
TEST(PagerTest, StreamsAreReadInRunsUpwardsAndDownwards) {
  constexpr uint64_t kPages = 2048, kCache = 256;
  for (bool down : {false, true}) {
    Mapped m = Map(kPages, kCache);
    ASSERT_NE(m.base, nullptr);
    for (uint64_t p = 0; p < kPages; ++p) Fill(m.Page(p), p, 1);
    const uint64_t pages_before = m.pool->reads(), requests_before = m.pool->read_requests();
    for (uint64_t i = 0; i < kPages; ++i) {
      const uint64_t p = down ? kPages - 1 - i : i;
      ASSERT_EQ(VersionOf(m.Page(p), p), 1u) << "page " << p;
    }
    const uint64_t pages = m.pool->reads() - pages_before, requests = m.pool->read_requests() - requests_before;
    EXPECT_GT(pages, kPages / 2);
    EXPECT_LE(requests * 4, pages) << (down ? "downwards: " : "upwards: ") << requests << " requests for " << pages
                                   << " pages";
  }
}

// A sequential scan: with the prefetcher, the pages are on their way before
// the scan reaches them, so few faults wait for a demand read; without it,
// every page does.
TEST(PagerTest, PrefetchingTurnsAScanIntoFewDemandMisses) {
  constexpr uint64_t kPages = 4096, kCache = 256;
  for (bool prefetch : {true, false}) {
    Mapped m = Map(kPages, kCache, 20'000, "clock", prefetch);
    ASSERT_NE(m.base, nullptr);
    for (uint64_t p = 0; p < kPages; ++p) Fill(m.Page(p), p, 1);
    PagerStats before = m.pager->Stats();
    for (uint64_t p = 0; p < kPages; ++p) ASSERT_EQ(VersionOf(m.Page(p), p), 1u) << "page " << p;
    PagerStats after = m.pager->Stats();
    uint64_t misses = after.remote_faults - before.remote_faults;
    if (prefetch) {
      EXPECT_LT(misses, kPages / 8);
      EXPECT_GT(after.probes_touched, 0u);
      EXPECT_GT(after.prefetches, kPages / 2);
    } else {
      EXPECT_GE(misses, kPages - kCache);
      EXPECT_EQ(after.prefetches, 0u);
    }
  }
}

TEST(PagerTest, RejectsATinyCacheAndAnUnknownPolicy) {
  auto pool = std::make_shared<FakePool>(kPage);
  auto small = Pager::Start({.cache_bytes = 4 * kPage}, std::make_unique<FakeQueue>(pool, kPage, 0), 64);
  EXPECT_EQ(small.status().code(), Code::kInvalidArgument);
  auto bad = Pager::Start({.policy = "lru-9"}, std::make_unique<FakeQueue>(pool, kPage, 0), 64);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("clock"), std::string::npos);
}

}  // namespace
}  // namespace tessera::vnode
