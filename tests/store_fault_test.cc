// The controller's store lost or full, under running memory nodes (the real
// daemons as processes): a controller restarted on an empty data directory
// never hands a running node's id to another, and one whose data directory
// fills keeps its nodes, says so once, and recovers by itself when space
// returns.
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "cmd/local_cluster.h"
#include "common/clock.h"
#include "common/page_pattern.h"
#include "tessera/client.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;

// How many lines of the file hold `needle`.
int CountLines(const std::string& path, const std::string& needle) {
  std::ifstream f(path);
  int n = 0;
  for (std::string line; std::getline(f, line);) n += line.find(needle) != std::string::npos;
  return n;
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::unique_ptr<Client> Connect(const cmd::LocalCluster& c) {
  auto client = Client::Connect({.controller = c.controller_address()});
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

Status WritePattern(Region& r, uint64_t version) {
  std::vector<uint8_t> buf(r.num_pages() * kPage);
  for (uint64_t p = 0; p < r.num_pages(); ++p) FillPattern(&buf[p * kPage], kPage, p, version);
  return r.Write(0, r.num_pages(), buf.data());
}

// Pages of `r` that do not read back as `version`.
uint64_t BadPages(Region& r, uint64_t version) {
  std::vector<uint8_t> buf(r.num_pages() * kPage);
  if (!r.Read(0, r.num_pages(), buf.data()).ok()) return r.num_pages();
  uint64_t bad = 0, v = 0;
  for (uint64_t p = 0; p < r.num_pages(); ++p) bad += !CheckPattern(&buf[p * kPage], kPage, p, &v) || v != version;
  return bad;
}

const char* Binary() {
  const char* bin = std::getenv("TESSERA_BIN");
  EXPECT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
  return bin;
}

TEST(StoreFaultTest, AControllerOnAnEmptyStoreNeverHandsOutARunningNodesId) {
  auto c = cmd::LocalCluster::Start({.memnodes = 4, .capacity_bytes = 64ull << 20, .heartbeat_ms = 100,
                                     .binary = Binary()});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  cmd::LocalCluster& cluster = **c;
  auto old_client = Connect(cluster);
  auto old = old_client->CreateRegion("old", 8 << 20, {.redundancy = "replicas:2"});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ASSERT_TRUE(WritePattern(**old, 1).ok());

  // The controller comes back on an empty data directory (wiped, or a new
  // disk) while every memory node keeps running.
  cluster.Kill(0, SIGKILL);
  std::filesystem::remove_all(cluster.data_dir() + "/controller");
  ASSERT_TRUE(cluster.RestartController().ok());
  const std::string log = cluster.data_dir() + "/controller.log";
  // Settled once every node has registered anew: then no node registers again.
  const uint64_t deadline = NowNanos() + 10'000'000'000ull;
  auto client = Connect(cluster);
  std::set<std::string> listed;
  while (NowNanos() < deadline) {
    auto status = client->GetClusterStatus();
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    listed.clear();
    for (const auto& n : status->nodes) {
      if (n.alive) listed.insert(n.address);
    }
    if (listed.size() == 4 && status->nodes.size() == 4) break;
    Sleep(100);
  }
  EXPECT_EQ(listed.size(), 4u) << "every running node is listed, alive, once:\n" << Slurp(log);
  const int registered = CountLines(log, "registered with");
  Sleep(3000);
  EXPECT_EQ(CountLines(log, "registered with"), registered) << "no node registers again and again:\n" << Slurp(log);
  auto status = client->GetClusterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->nodes.size(), 4u);
  for (const auto& n : status->nodes) EXPECT_EQ(n.used_bytes, 0u) << n.address << " dropped what it held";
  EXPECT_TRUE(status->regions.empty());

  // The old region is gone with the store: its client's writes fail, and are
  // never taken for a new region's.
  auto fresh = client->CreateRegion("new", 8 << 20, {.redundancy = "replicas:2"});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_NE((*fresh)->id(), (*old)->id());
  ASSERT_TRUE(WritePattern(**fresh, 2).ok());
  EXPECT_FALSE(WritePattern(**old, 3).ok()) << "a write to a region no store knows is not acknowledged";
  EXPECT_EQ(BadPages(**fresh, 2), 0u);
  old->reset();
}

// A tmpfs of `bytes` mounted on `dir` for the test's length.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, uint64_t bytes) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string opts = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    EXPECT_TRUE(mounted_) << "mount a tmpfs on " << dir << " (the test runs as root): " << std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Writes a file until the disk is full.
  void Fill() {
    std::ofstream f(dir_ + "/filler", std::ios::binary);
    std::string chunk(4096, 'x');
    while (f.write(chunk.data(), static_cast<std::streamsize>(chunk.size())) && f.flush()) {
    }
  }
  void Empty() { std::filesystem::remove(dir_ + "/filler"); }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST(StoreFaultTest, AControllerWhoseDiskFillsKeepsItsNodesAndRecoversByItself) {
  char tmpl[] = "/tmp/tessera-full-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    SmallDisk disk(dir + "/controller", 1 << 20);
    ASSERT_TRUE(disk.mounted());
    auto c = cmd::LocalCluster::Start({.memnodes = 3, .capacity_bytes = 64ull << 20, .data_dir = dir,
                                       .heartbeat_ms = 100, .binary = Binary()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cmd::LocalCluster& cluster = **c;
    const std::string log = dir + "/controller.log";
    auto client = Connect(cluster);
    auto a = client->CreateRegion("a", 4 << 20, {.redundancy = "replicas:2"});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(WritePattern(**a, 1).ok());

    disk.Fill();
    // The store's log may still append into the slack of its last page: the
    // disk is full for it once a region's record no longer fits.
    Status refused;
    for (int i = 0; i < 64 && refused.ok(); ++i) {
      auto pad = client->CreateRegion("pad-" + std::to_string(i), 1 << 20);
      if (!pad.ok()) refused = pad.status();
    }
    EXPECT_NE(refused.message().find("No space left on device"), std::string::npos) << refused.ToString();
    EXPECT_FALSE(client->CreateRegion("b", 1 << 20).ok());
    // A memory node dies while nothing can be recorded; the others live on
    // their heartbeats, which need no write, and the data path is untouched.
    const std::string victim = (*a)->NodeOfEachFragment()[0];
    cluster.Kill(cluster.MemnodeIndex(victim), SIGKILL);
    Sleep(4000);
    auto status = client->GetClusterStatus();
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    int alive = 0;
    for (const auto& n : status->nodes) alive += n.alive && n.address != victim;
    EXPECT_EQ(alive, 2) << "live nodes stay live:\n" << Slurp(log);
    ASSERT_FALSE(status->regions.empty());
    ASSERT_EQ(status->regions[0].name, "a");
    EXPECT_NE(status->regions[0].health, "healthy") << "a fragment's node is dead";
    EXPECT_EQ(BadPages(**a, 1), 0u);
    ASSERT_TRUE(WritePattern(**a, 2).ok());
    EXPECT_EQ(CountLines(log, "store cannot be written"), 1) << "one warning a minute:\n" << Slurp(log);

    // Space returns: no restart, and what waited is done.
    disk.Empty();
    const uint64_t deadline = NowNanos() + 20'000'000'000ull;
    bool created = false, healthy = false;
    while (NowNanos() < deadline && !(created && healthy)) {
      Sleep(200);
      if (!created) created = client->CreateRegion("b", 1 << 20).ok();
      auto s = client->GetClusterStatus();
      healthy = s.ok() && !s->regions.empty() && s->regions[0].name == "a" && s->regions[0].health == "healthy";
    }
    EXPECT_TRUE(created) << Slurp(log);
    EXPECT_TRUE(healthy) << "the lost fragments were recorded and rebuilt:\n" << Slurp(log);
    EXPECT_GE(CountLines(log, "takes writes again"), 1) << Slurp(log);
    EXPECT_EQ(CountLines(log, "store cannot be written"), 1) << Slurp(log);
    EXPECT_EQ(BadPages(**a, 2), 0u);
    a->reset();
    client.reset();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
