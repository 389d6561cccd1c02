// Faults with real processes (the `tessera` binary's daemons, as `tessera up`
// runs them): memory nodes kill -9ed while a writer runs, the rebuild that
// follows, then two more nodes lost; and a client process kill -9ed again and
// again in the middle of its writes. Every page must read back whole.
//
// The region is 512 MiB in the plain debug build. Under the sanitizers,
// which run the same code 3-10 times slower, it is 64 MiB
// (TESSERA_FAULT_REGION_MIB, compiled in by tests/CMakeLists.txt; the
// environment variable of that name overrides it) so CI stays in its time
// budget; the code paths are the same.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cmd/local_cluster.h"
#include "common/page_pattern.h"
#include "tessera/client.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;
constexpr int kMemnodes = 8;  // a 6-wide stripe, and two spares to rebuild onto

#ifndef TESSERA_FAULT_REGION_MIB
#define TESSERA_FAULT_REGION_MIB 512
#endif

uint64_t RegionBytes() {
  const char* mib = std::getenv("TESSERA_FAULT_REGION_MIB");
  return (mib != nullptr ? std::strtoull(mib, nullptr, 10) : TESSERA_FAULT_REGION_MIB) << 20;
}

class FaultTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("TESSERA_BIN");
    ASSERT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
    auto c = cmd::LocalCluster::Start(
        {.memnodes = kMemnodes, .capacity_bytes = 1ull << 30, .heartbeat_ms = 200, .binary = bin});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
    auto client = Client::Connect({.controller = cluster_->controller_address()});
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
  }
  void TearDown() override {
    region_.reset();
    client_.reset();
  }

  // Writes (pages [0, n) with pattern `version`) or verifies them, through one
  // deep queue. Returns the first error; counts pages that read back wrong.
  Status Pass(PageIo::Kind kind, uint64_t version, uint64_t* wrong = nullptr) {
    const uint64_t n = region_->num_pages();
    constexpr uint32_t kChunk = 32;
    auto queue = region_->NewQueue({.depth = 256, .max_batch_pages = 32});
    std::vector<uint8_t> buf(uint64_t{kChunk} * kPage * 16);  // 16 chunks in flight
    Status first;
    uint64_t next = 0, slot_of[16] = {};
    std::vector<int> free_slots;
    for (int i = 0; i < 16; ++i) free_slots.push_back(i);
    auto finish = [&](const Completion& c) {
      int slot = static_cast<int>(c.user_data);
      if (!c.status.ok() && first.ok()) first = c.status;
      if (c.status.ok() && kind == PageIo::Kind::kRead) {
        for (uint32_t i = 0; i < kChunk && slot_of[slot] + i < n; ++i) {
          uint64_t got = 0;
          uint64_t page = slot_of[slot] + i;
          if (!CheckPattern(&buf[(uint64_t{kChunk} * slot + i) * kPage], kPage, page, &got) || got != version) {
            ++*wrong;
          }
        }
      }
      free_slots.push_back(slot);
    };
    while (next < n || free_slots.size() < 16) {
      while (next < n && !free_slots.empty()) {
        int slot = free_slots.back();
        free_slots.pop_back();
        uint32_t count = static_cast<uint32_t>(std::min<uint64_t>(kChunk, n - next));
        uint8_t* at = &buf[uint64_t{kChunk} * slot * kPage];
        if (kind == PageIo::Kind::kWrite) {
          for (uint32_t i = 0; i < count; ++i) FillPattern(at + uint64_t{i} * kPage, kPage, next + i, version);
        }
        slot_of[slot] = next;
        TS_RETURN_IF_ERROR(queue->Submit({{PageIo{kind, next, count, at, static_cast<uint64_t>(slot)}}}));
        next += count;
      }
      std::vector<Completion> done;
      TS_RETURN_IF_ERROR(queue->Reap(&done, 1, 30000).status());
      for (const Completion& c : done) finish(c);
    }
    return first;
  }

  void ExpectEveryPage(uint64_t version, const std::string& when) {
    uint64_t wrong = 0;
    Status s = Pass(PageIo::Kind::kRead, version, &wrong);
    EXPECT_TRUE(s.ok()) << when << ": " << s.ToString();
    EXPECT_EQ(wrong, 0u) << when << ": pages that read back wrong";
  }

  std::string Health() {
    auto list = client_->ListRegions();
    if (!list.ok()) return list.status().ToString();
    for (const RegionSummary& r : *list) {
      if (r.name == region_->name()) return r.health;
    }
    return "missing";
  }

  bool WaitForHealthy(int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (Health() == "healthy") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Waits until the controller has declared every memory node in `dead`
  // (cluster indexes) dead: until then a region still reads "healthy".
  bool WaitForDeclaredDead(const std::vector<size_t>& dead, int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      auto status = client_->GetClusterStatus();
      size_t declared = 0;
      if (status.ok()) {
        for (const NodeStatus& n : status->nodes) {
          if (!n.alive && std::ranges::count(dead, cluster_->MemnodeIndex(n.address)) > 0) ++declared;
        }
      }
      if (declared == dead.size()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Memory nodes (cluster indexes, 1-based) still running.
  std::vector<size_t> Live() const {
    std::vector<size_t> out;
    for (size_t i = 1; i < cluster_->pids().size(); ++i) {
      if (cluster_->pids()[i] > 0) out.push_back(i);
    }
    return out;
  }

  std::unique_ptr<cmd::LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Region> region_;
};

TEST_P(FaultTest, TwoNodesDieDuringWritesThenTwoOthersAfterTheRebuild) {
  auto region = client_->CreateRegion("faults", RegionBytes(), {.redundancy = GetParam()});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  region_ = std::move(*region);
  ASSERT_TRUE(Pass(PageIo::Kind::kWrite, 1).ok());

  // The second pass of writes: two memory nodes die at random moments in it.
  std::mt19937 rng(std::random_device{}());
  std::vector<size_t> victims = Live();
  std::shuffle(victims.begin(), victims.end(), rng);
  victims.resize(2);
  std::atomic<bool> writing{true};
  std::atomic<int> killed{0};
  std::thread killer([&] {
    for (size_t v : victims) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 800));
      if (!writing.load()) break;
      cluster_->Kill(v, SIGKILL);
      ++killed;
    }
  });
  // Passes of version 2 until both kills have landed in one (however fast
  // this build writes).
  Status wrote;
  do {
    wrote = Pass(PageIo::Kind::kWrite, 2);
  } while (wrote.ok() && killed.load() < 2);
  writing = false;
  killer.join();
  ASSERT_TRUE(wrote.ok()) << "the writer must ride through the losses: " << wrote.ToString();
  ASSERT_EQ(killed.load(), 2);
  ExpectEveryPage(2, "after two nodes died during the writes");

  // A small region is written before the controller's node timeout: let it
  // notice the deaths, or "healthy" would only mean "not noticed yet".
  ASSERT_TRUE(WaitForDeclaredDead(victims, 60)) << "the controller did not notice the deaths";
  ASSERT_TRUE(WaitForHealthy(300)) << "rebuild did not finish: " << Health();
  ExpectEveryPage(2, "after the rebuild");

  std::vector<size_t> others = Live();
  ASSERT_GE(others.size(), 2u);
  std::shuffle(others.begin(), others.end(), rng);
  cluster_->Kill(others[0], SIGKILL);
  cluster_->Kill(others[1], SIGKILL);
  ExpectEveryPage(2, "after two other nodes died");
}

INSTANTIATE_TEST_SUITE_P(Schemes, FaultTest, ::testing::Values("ec:4+2", "replicas:3"),
                         [](const auto& info) { return info.param == "ec:4+2" ? "Ec4p2" : "Replicas3"; });

// A client process that writes pages in random order until it is killed.
// Tells the parent (through `ready`) once it has the region open.
[[noreturn]] void WriterChild(const std::string& controller, uint64_t version, int ready) {
  auto client = Client::Connect({.controller = controller});
  if (!client.ok()) _exit(2);
  auto region = (*client)->OpenRegion("crash");
  if (!region.ok()) _exit(3);
  const uint64_t n = (*region)->num_pages();
  std::vector<uint64_t> order(n);
  for (uint64_t p = 0; p < n; ++p) order[p] = p;
  std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<uint32_t>(version)));
  auto queue = (*region)->NewQueue({.depth = 128, .max_batch_pages = 16});
  std::vector<uint8_t> pages(n * kPage);
  for (uint64_t p = 0; p < n; ++p) FillPattern(&pages[p * kPage], kPage, p, version);
  char one = 1;
  if (write(ready, &one, 1) != 1) _exit(4);
  for (;;) {
    for (uint64_t p : order) {
      if (!queue->Submit({{PageIo{PageIo::Kind::kWrite, p, 1, &pages[p * kPage], p}}}).ok()) _exit(5);
      std::vector<Completion> done;
      if (queue->outstanding() >= 128 && !queue->Reap(&done, 1, 30000).ok()) _exit(6);
    }
  }
}

TEST(CrashTest, AClientKilledMidWriteLeavesEveryPageWhole) {
  const char* bin = std::getenv("TESSERA_BIN");
  ASSERT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
  auto cluster = cmd::LocalCluster::Start({.memnodes = 7, .capacity_bytes = 256ull << 20, .binary = bin});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  const std::string controller = (*cluster)->controller_address();
  {
    auto client = Client::Connect({.controller = controller});
    ASSERT_TRUE(client.ok());
    // Big enough that no writer gets through a whole pass before its kill.
    ASSERT_TRUE((*client)->CreateRegion("crash", 64ull << 20, {.redundancy = "ec:4+2"}).ok());
  }
  constexpr uint64_t kRounds = 8;
  std::mt19937 rng(std::random_device{}());
  for (uint64_t version = 1; version <= kRounds; ++version) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      WriterChild(controller, version, fds[1]);
    }
    close(fds[1]);
    char byte;
    ASSERT_EQ(read(fds[0], &byte, 1), 1) << "writer " << version << " did not start";
    close(fds[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 200));
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer " << version << " exited early with " << WEXITSTATUS(status);
  }
  // Every page reads back, and is one whole version some writer wrote.
  auto client = Client::Connect({.controller = controller});
  ASSERT_TRUE(client.ok());
  auto region = (*client)->OpenRegion("crash");
  ASSERT_TRUE(region.ok());
  const uint64_t n = (*region)->num_pages();
  std::vector<uint8_t> buf(n * kPage);
  Status read = (*region)->Read(0, n, buf.data());
  ASSERT_TRUE(read.ok()) << read.ToString();
  uint64_t never = 0, whole = 0;
  std::set<uint64_t> seen;
  for (uint64_t p = 0; p < n; ++p) {
    const uint8_t* at = &buf[p * kPage];
    uint64_t got = 0;
    if (std::all_of(at, at + kPage, [](uint8_t b) { return b == 0; })) {
      ++never;
    } else if (CheckPattern(at, kPage, p, &got) && got >= 1 && got <= kRounds) {
      ++whole;
      seen.insert(got);
    } else {
      ADD_FAILURE() << "page " << p << " is neither unwritten nor one whole version";
    }
  }
  EXPECT_EQ(never + whole, n);
  EXPECT_GT(seen.size(), 1u) << "the writers should have left several versions behind";
}

}  // namespace
}  // namespace tessera
