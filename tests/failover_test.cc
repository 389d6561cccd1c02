// Controller high availability with the real daemons as processes: three etcd
// members hold the cluster's state, two controllers run for leader on it, and
// memory nodes and clients are given both controllers' addresses. The leader
// is kill -9ed under a client; the standby takes over with every region and
// every byte, and everybody finds it without being told.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>

#include "common/loopback_port.h"
#include "common/page_pattern.h"
#include "common/subprocess.h"
#include "ctlplane/etcd_cluster.h"
#include "tessera/client.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;
constexpr int kMemnodes = 7;  // ec:4+2 and one to spare

// The time of day, in ms, of the first line of a daemon's log that holds
// `needle` ("2026-11-27 05:12:01.234 info [pid] ..."); -1 if none does.
int64_t LogMs(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  const size_t line = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
  int h = 0, m = 0, sec = 0, ms = 0;
  if (std::sscanf(text.c_str() + line + 11, "%d:%d:%d.%d", &h, &m, &sec, &ms) != 4) return -1;
  return ((h * 60 + m) * 60 + sec) * 1000LL + ms;
}

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("TESSERA_BIN");
    ASSERT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
    bin_ = bin;
    char tmpl[] = "/tmp/tessera-failover-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto etcd = ctlplane::EtcdCluster::Start({.dir = dir_ + "/etcd", .members = 3});
    ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
    etcd_ = std::move(*etcd);
    for (const std::string& e : etcd_->endpoints()) endpoints_ += (endpoints_.empty() ? "" : ",") + e;
    for (int i = 0; i < 2; ++i) {
      auto addr = PickLoopbackAddress();
      ASSERT_TRUE(addr.ok());
      controller_addrs_.push_back(*addr);
      controllers_ += (controllers_.empty() ? "" : ",") + *addr;
      ASSERT_NO_FATAL_FAILURE(StartController(i));
      // The first leads before the second runs: which one leads is known.
      if (i == 0) {
        ASSERT_NO_FATAL_FAILURE(WaitListening(*addr));
      }
    }
    for (int i = 0; i < kMemnodes; ++i) {
      auto addr = PickLoopbackAddress();
      ASSERT_TRUE(addr.ok());
      memnode_addrs_.push_back(*addr);
      auto pid = SpawnProcess({bin_, "memnode", "--listen", *addr, "--controller", controllers_,
                               "--capacity", "256M", "--heartbeat-ms", "100"},
                              dir_ + "/memnode" + std::to_string(i) + ".log");
      ASSERT_TRUE(pid.ok()) << pid.status().ToString();
      memnode_pids_.push_back(*pid);
    }
    auto c = Client::Connect({.controller = controllers_, .timeout_ms = 10000});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    ASSERT_NO_FATAL_FAILURE(WaitForNodes(kMemnodes));
  }
  void TearDown() override {
    client_.reset();
    for (pid_t p : memnode_pids_) StopProcess(p, 2000);
    for (pid_t p : controller_pids_) {
      if (p > 0) StopProcess(p, 2000);
    }
    etcd_.reset();
    if (HasFailure()) {
      std::printf("the daemons' logs are kept in %s\n", dir_.c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  void StartController(int i) {
    auto pid = SpawnProcess({bin_, "controller", "--listen", controller_addrs_[i], "--etcd", endpoints_,
                             "--leader-ttl", "1", "--member-ttl", "1"},
                            dir_ + "/controller" + std::to_string(i) + ".log");
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    if (controller_pids_.size() <= static_cast<size_t>(i)) controller_pids_.resize(i + 1, 0);
    controller_pids_[i] = *pid;
  }
  void WaitListening(const std::string& addr) {
    for (int i = 0; i < 200; ++i) {
      if (Client::Connect({.controller = addr, .timeout_ms = 200}).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "controller at " << addr << " never led";
  }
  // Polls the cluster's status until `done` holds of it.
  template <typename Pred>
  bool WaitStatus(Pred done, int timeout_ms = 20000) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
      auto s = client_->GetClusterStatus();
      if (s.ok() && done(*s)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void WaitForNodes(size_t n) {
    for (int i = 0; i < 200; ++i) {
      auto s = client_->GetClusterStatus();
      size_t alive = 0;
      if (s.ok()) {
        for (auto& node : s->nodes) alive += node.alive;
      }
      if (alive >= n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "fewer than " << n << " memory nodes registered";
  }
  void Write(Region& r, uint64_t version) {
    std::vector<uint8_t> buf(r.num_pages() * kPage);
    for (uint64_t p = 0; p < r.num_pages(); ++p) FillPattern(&buf[p * kPage], kPage, p, version);
    Status s = r.Write(0, r.num_pages(), buf.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  uint64_t BadPages(Region& r, uint64_t version) {
    std::vector<uint8_t> buf(r.num_pages() * kPage);
    Status s = r.Read(0, r.num_pages(), buf.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    uint64_t bad = 0, v = 0;
    for (uint64_t p = 0; p < r.num_pages(); ++p) bad += !CheckPattern(&buf[p * kPage], kPage, p, &v) || v != version;
    return bad;
  }

  std::string bin_, dir_, endpoints_, controllers_;
  std::unique_ptr<ctlplane::EtcdCluster> etcd_;
  std::vector<std::string> controller_addrs_, memnode_addrs_;
  std::vector<pid_t> controller_pids_, memnode_pids_;
  std::unique_ptr<Client> client_;
};

TEST_F(FailoverTest, TheStandbyTakesOverWithEveryRegionAndByte) {
  auto before = client_->CreateRegion("before", 4ull << 20, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_NO_FATAL_FAILURE(Write(**before, 1));

  ::kill(controller_pids_[0], SIGKILL);
  ::waitpid(controller_pids_[0], nullptr, 0);
  controller_pids_[0] = 0;
  const auto killed = std::chrono::steady_clock::now();
  // The same client, untouched: its next control request finds the standby.
  auto after = client_->CreateRegion("after", 4ull << 20, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  std::printf("fail-over: kill -9 of the leader to a region created by the standby: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - killed)
                                         .count()));
  ASSERT_NO_FATAL_FAILURE(Write(**after, 2));

  auto list = client_->ListRegions();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->size(), 2u);
  EXPECT_EQ(BadPages(**before, 1), 0u) << "pages written under the old leader";
  EXPECT_EQ(BadPages(**after, 2), 0u);
  auto reopened = client_->OpenRegion("before");
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(BadPages(**reopened, 1), 0u) << "its map, read back from etcd by the new leader";
  ASSERT_NO_FATAL_FAILURE(WaitForNodes(kMemnodes)) << "the memory nodes found the new leader";

  // The old leader comes back as a standby and says who leads.
  ASSERT_NO_FATAL_FAILURE(StartController(0));
  Status standby;
  for (int i = 0; i < 100; ++i) {
    auto c = Client::Connect({.controller = controller_addrs_[0], .timeout_ms = 300});
    standby = c.status();
    if (standby.code() == Code::kNotLeader) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(standby.code(), Code::kNotLeader) << standby.ToString();
  EXPECT_NE(standby.message().find("the leader is at " + controller_addrs_[1]), std::string::npos)
      << standby.ToString();
  before->reset();
  after->reset();
  reopened->reset();
}

// The client follows the leader for its requests and for its map watch: a
// handle that does no I/O gets the map the new leader publishes.
TEST_F(FailoverTest, AStoppedLeaderHandsOverAndTheClientFollows) {
  auto idle = client_->CreateRegion("idle", 1ull << 20, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  // SIGTERM: the leader resigns, so the standby need not wait out its lease.
  StopProcess(controller_pids_[0], 5000);
  controller_pids_[0] = 0;
  auto r = client_->CreateRegion("next", 1ull << 20, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_NO_FATAL_FAILURE(Write(**r, 3));
  EXPECT_EQ(BadPages(**r, 3), 0u);

  const std::string victim = (*idle)->NodeOfEachFragment()[0];
  for (size_t i = 0; i < memnode_addrs_.size(); ++i) {
    if (memnode_addrs_[i] == victim) ::kill(memnode_pids_[i], SIGKILL);
  }
  ASSERT_TRUE(WaitStatus([&](const ClusterStatus& s) {
    bool dead = false, healthy = false;
    for (const NodeStatus& n : s.nodes) dead |= n.address == victim && !n.alive;
    for (const RegionSummary& region : s.regions) healthy |= region.name == "idle" && region.health == "healthy";
    return dead && healthy;
  })) << "the region rebuilt without " << victim;
  bool followed = false;
  for (int i = 0; i < 250 && !followed; ++i) {
    followed = true;
    for (const std::string& n : (*idle)->NodeOfEachFragment()) followed &= n != victim;
    if (!followed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(followed) << "the idle handle's map still names " << victim;
  r->reset();
  idle->reset();
}

// A memory node frozen (SIGSTOP: the process neither renews its lease nor
// answers, as if its link were cut) is dead to the cluster once its lease
// expires, and its fragments are rebuilt elsewhere. Thawed, it must not serve
// what it held: a reader with the map from before the freeze gets the
// newest bytes, and the node comes back empty, a new incarnation.
TEST_F(FailoverTest, AFrozenMemoryNodeIsRebuiltAroundAndServesNothingStaleOnReturn) {
  auto region = client_->CreateRegion("r", 4ull << 20, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  ASSERT_NO_FATAL_FAILURE(Write(**region, 1));
  auto status = client_->GetClusterStatus();
  ASSERT_TRUE(status.ok());
  size_t victim = memnode_addrs_.size();
  for (const NodeStatus& n : status->nodes) {
    for (size_t i = 0; i < memnode_addrs_.size() && victim == memnode_addrs_.size(); ++i) {
      if (n.address == memnode_addrs_[i] && n.used_bytes > 0) victim = i;
    }
  }
  ASSERT_LT(victim, memnode_addrs_.size()) << "no memory node holds a fragment";
  // Keeps the map from before the freeze: its client does not follow maps.
  auto unwatched = Client::Connect({.controller = controllers_, .timeout_ms = 10000, .watch_maps = false});
  ASSERT_TRUE(unwatched.ok()) << unwatched.status().ToString();
  auto old_map = (*unwatched)->OpenRegion("r");
  ASSERT_TRUE(old_map.ok());

  ::kill(memnode_pids_[victim], SIGSTOP);
  // Written at once through the old map, which names the frozen node: the
  // client gives up on it after node_silence_ms and the pages settle on the
  // five that answer (before, they waited out timeout_ms and failed).
  ASSERT_NO_FATAL_FAILURE(Write(**old_map, 2));
  const std::string addr = memnode_addrs_[victim];
  auto healthy_without = [&](const ClusterStatus& s) {
    bool dead = false;
    for (const NodeStatus& n : s.nodes) dead |= n.address == addr && !n.alive;
    return dead && s.regions.size() == 1 && s.regions[0].health == "healthy";
  };
  ASSERT_TRUE(WaitStatus(healthy_without)) << "the node's lease expired and the region was rebuilt";
  {
    std::ifstream log(dir_ + "/controller0.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    const int64_t gone = LogMs(text, "membership key is gone"), rebuilding = LogMs(text, "rebuilding");
    ASSERT_TRUE(gone >= 0 && rebuilding >= 0) << text;
    std::printf("lease expiry (the key's deletion seen by the controller) to rebuild start: %lld ms\n",
                static_cast<long long>(rebuilding - gone));
  }
  auto rebuilt = client_->OpenRegion("r");
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  ASSERT_NO_FATAL_FAILURE(Write(**rebuilt, 3));

  ::kill(memnode_pids_[victim], SIGCONT);
  ASSERT_TRUE(WaitStatus([&](const ClusterStatus& s) {
    for (const NodeStatus& n : s.nodes) {
      if (n.address == addr) return n.alive && n.used_bytes == 0;
    }
    return false;
  })) << "the node came back, empty";
  EXPECT_EQ(BadPages(**old_map, 3), 0u) << "read through the map from before the freeze";
  std::ifstream log(dir_ + "/memnode" + std::to_string(victim) + ".log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("membership lease expired"), std::string::npos) << text;
  EXPECT_NE(text.find("dropped every fragment"), std::string::npos) << text;
  EXPECT_EQ(BadPages(**rebuilt, 3), 0u);
  old_map->reset();
  rebuilt->reset();
  region->reset();
}

}  // namespace
}  // namespace tessera
