// Failure detection and live rebuild against a real controller and memory
// nodes on threads of this process: a killed node is declared dead, its
// fragments are rebuilt on the others while a writer keeps going, the
// region reports healthy again, and then survives losses it could not have
// survived without the rebuild.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/page_pattern.h"
#include "tessera/client.h"
#include "tests/in_process_cluster.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;
constexpr uint64_t kPages = 2048;  // 128 stripes of 16 pages

class RebuildTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto c = Client::Connect({.controller = cluster_.controller_address(), .retry_down_ms = 200});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    auto r = client_->CreateRegion("r", kPages * kPage, {.redundancy = GetParam()});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    region_ = std::move(*r);
  }

  // Region "r" as the controller sees it.
  RegionSummary Summary() {
    auto s = client_->GetClusterStatus();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    for (auto& r : s->regions) {
      if (r.name == "r") return r;
    }
    ADD_FAILURE() << "region r not listed";
    return {};
  }

  // Waits until region "r" is healthy again (rebuilt), up to 30 s.
  void WaitHealthy() {
    for (int i = 0; i < 300; ++i) {
      RegionSummary s = Summary();
      if (s.health == "healthy") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "region still " << Summary().health;
  }

  void Kill(const std::string& address) {
    int i = cluster_.MemnodeAt(address);
    ASSERT_GE(i, 0) << address;
    cluster_.KillMemnode(i);
  }

  // Every page must hold pattern version versions[p].
  void VerifyAll(const std::vector<uint64_t>& versions) {
    std::vector<uint8_t> buf(kPages * kPage);
    Status s = region_->Read(0, kPages, buf.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (uint64_t p = 0; p < kPages; ++p) {
      uint64_t got = 0;
      ASSERT_TRUE(CheckPattern(buf.data() + p * kPage, kPage, p, &got)) << "page " << p;
      ASSERT_EQ(got, versions[p]) << "page " << p;
    }
  }

  testing::InProcessCluster cluster_{{.memnodes = 8, .capacity_bytes = 32ull << 20, .node_timeout_ms = 600}};
  std::unique_ptr<Client> client_;
  std::unique_ptr<Region> region_;
};

TEST_P(RebuildTest, ALostNodeIsRebuiltWhileAWriterKeepsGoing) {
  std::vector<uint64_t> versions(kPages, 1);
  {
    std::vector<uint8_t> buf(kPages * kPage);
    for (uint64_t p = 0; p < kPages; ++p) FillPattern(buf.data() + p * kPage, kPage, p, 1);
    Status s = region_->Write(0, kPages, buf.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(Summary().health, "healthy");
  const std::string victim = region_->NodeOfEachFragment()[0];
  Kill(victim);

  // A writer rewrites pages while the node is declared dead and rebuilt.
  std::atomic<bool> stop{false};
  std::atomic<int> write_errors{0};
  std::thread writer([&] {
    std::vector<uint8_t> page(kPage);
    for (uint64_t i = 0; !stop.load(); ++i) {
      uint64_t p = (i * 37) % kPages;
      FillPattern(page.data(), kPage, p, versions[p] + 1);
      Status s = region_->Write(p, 1, page.data());
      if (s.ok()) {
        ++versions[p];
      } else {
        ++write_errors;
        ADD_FAILURE() << s.ToString();
      }
    }
  });
  bool saw_repair = false;
  for (int i = 0; i < 100 && !saw_repair; ++i) {
    std::string h = Summary().health;
    saw_repair = h == "degraded" || h == "rebuilding";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(saw_repair) << "the dead node was never noticed";
  WaitHealthy();
  stop = true;
  writer.join();
  EXPECT_EQ(write_errors.load(), 0);

  auto fresh = client_->OpenRegion("r");
  ASSERT_TRUE(fresh.ok());
  for (const auto& a : (*fresh)->NodeOfEachFragment()) EXPECT_NE(a, victim) << "a fragment still on the dead node";
  VerifyAll(versions);

  // Two more losses, which the region survives only because it was rebuilt.
  std::set<std::string> live;
  for (const auto& a : (*fresh)->NodeOfEachFragment()) live.insert(a);
  auto it = live.begin();
  Kill(*it++);
  Kill(*it);
  VerifyAll(versions);
}

// A handle that does no I/O at all still follows the map: the controller's
// map watch brings it the rebuilt map, which no longer names the dead node.
// A client that does not watch keeps the old map until a node refuses it.
TEST_P(RebuildTest, AnIdleHandleFollowsTheMapThroughTheRebuild) {
  auto unwatched = Client::Connect({.controller = cluster_.controller_address(), .watch_maps = false});
  ASSERT_TRUE(unwatched.ok()) << unwatched.status().ToString();
  auto idle = client_->OpenRegion("r");
  auto idle_unwatched = (*unwatched)->OpenRegion("r");
  ASSERT_TRUE(idle.ok() && idle_unwatched.ok());
  const std::string victim = region_->NodeOfEachFragment()[0];
  ASSERT_NO_FATAL_FAILURE(Kill(victim));
  ASSERT_NO_FATAL_FAILURE(WaitHealthy());
  auto names = [](Region& r, const std::string& node) {
    for (const std::string& n : r.NodeOfEachFragment()) {
      if (n == node) return true;
    }
    return false;
  };
  bool followed = false;
  for (int i = 0; i < 300 && !followed; ++i) {
    followed = !names(**idle, victim);
    if (!followed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(followed) << "the idle handle still names " << victim;
  EXPECT_TRUE(names(**idle_unwatched, victim)) << "without a watch the map moves only when a node refuses it";
  idle->reset();
  idle_unwatched->reset();
}

INSTANTIATE_TEST_SUITE_P(Schemes, RebuildTest, ::testing::Values("ec:4+2", "replicas:3"),
                         [](const auto& info) { return info.param == "ec:4+2" ? "Ec4p2" : "Replicas3"; });

}  // namespace
}  // namespace tessera
