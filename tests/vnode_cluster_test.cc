// The pager over a real erasure-coded region: memory nodes and controller on
// threads, pages going through the client library's IoQueue (and its
// WakeOnReadable), a cache a sixteenth of the data, and a memory node lost
// while the memory is in use.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "tessera/client.h"
#include "tests/in_process_cluster.h"
#include "vnode/pager.h"

namespace tessera {
namespace {

constexpr size_t kPage = 4096;
constexpr uint64_t kPages = 4096;  // 16 MiB
constexpr uint64_t kCachePages = 256;

void Fill(uint8_t* p, uint64_t page, uint32_t round) {
  auto* w = reinterpret_cast<uint64_t*>(p);
  for (size_t i = 0; i < kPage / 8; ++i) w[i] = page * 1000003 + i * 7 + round;
}

bool Holds(const uint8_t* p, uint64_t page, uint32_t round) {
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kPage / 8; ++i) {
    if (w[i] != page * 1000003 + i * 7 + round) return false;
  }
  return true;
}

TEST(VnodeClusterTest, ThreadsPageThroughAnErasureCodedRegionAndSurviveANodeLoss) {
  testing::InProcessCluster cluster({.memnodes = 7, .capacity_bytes = 32ull << 20});
  auto client = Client::Connect({.controller = cluster.controller_address()});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto region = (*client)->CreateRegion("heap", kPages * kPage, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  {
    auto pager = vnode::Pager::Start({.cache_bytes = kCachePages * kPage}, (*region)->NewQueue({.depth = 64}), kPages);
    ASSERT_TRUE(pager.ok()) << pager.status().ToString();
    auto* base = static_cast<uint8_t*>((*pager)->base());
    constexpr int kThreads = 4;
    std::atomic<uint64_t> bad{0};
    auto each_thread = [&](auto&& body) {
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { body(t); });
      for (auto& th : threads) th.join();
    };
    each_thread([&](int t) {
      for (uint64_t p = static_cast<uint64_t>(t); p < kPages; p += kThreads) Fill(base + p * kPage, p, 1);
    });
    each_thread([&](int t) {
      for (uint64_t p = static_cast<uint64_t>(t); p < kPages; p += kThreads) {
        if (!Holds(base + p * kPage, p, 1)) bad.fetch_add(1);
      }
    });
    EXPECT_EQ(bad.load(), 0u);
    // Lose a memory node: pages come back decoded from the other five.
    cluster.KillMemnode(2);
    for (uint64_t p = 0; p < kPages; ++p) {
      if (!Holds(base + p * kPage, p, 1)) bad.fetch_add(1);
    }
    EXPECT_EQ(bad.load(), 0u);
    vnode::PagerStats s = (*pager)->Stats();
    EXPECT_LE(s.peak_used_bytes, kCachePages * kPage);
    EXPECT_GE(s.pages_written, kPages - kCachePages);
    EXPECT_GE(s.pages_read, kPages - kCachePages);  // demand or prefetched
    EXPECT_GT(s.fault_p50_ns, 0u);
  }
}

}  // namespace
}  // namespace tessera
