// The multi-host acceptance run: scripts/netns.sh makes a host per daemon on
// this machine (network namespaces joined by a bridge, each with its own
// address) — three etcd members, two controllers, seven memory nodes (one
// joins late) and a compute host, which this test process moves into. A
// writer/verifier keeps going on an ec:4+2 region while the leader
// controller is killed, an etcd member is killed, a memory node's link is cut
// (and later restored: it must not serve what it held) and a new memory node
// joins and takes the rebuilt fragments. Not one page may be lost or wrong,
// and no I/O may fail.
//
// Needs root (network namespaces); CI runs as root.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/page_pattern.h"
#include "common/subprocess.h"
#include "ctlplane/etcd_cluster.h"
#include "tessera/client.h"

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kPage = 4096;
constexpr int kMemnodes = 6;  // ec:4+2 exactly; a seventh joins late

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Writes and verifies an ec:4+2 region without pause from a thread of its
// own: the first half of the pages is written once and checked every round
// (bytes that must outlive every failure), the second half written anew
// each round and read back.
class WriterVerifier {
 public:
  explicit WriterVerifier(Region* region) : region_(region), thread_([this] { Run(); }) {}
  ~WriterVerifier() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t rounds() const { return rounds_.load(); }
  uint64_t failed_io() const { return failed_io_.load(); }
  uint64_t wrong_pages() const { return wrong_pages_.load(); }
  std::string first_problem() {
    std::lock_guard lk(mu_);
    return first_problem_;
  }

 private:
  void Run() {
    const uint64_t n = region_->num_pages(), half = n / 2;
    std::vector<uint8_t> buf(n * kPage);
    for (uint64_t p = 0; p < half; ++p) FillPattern(&buf[p * kPage], kPage, p, 1);
    if (!Check(region_->Write(0, half, buf.data()), "write of the fixed half")) return;
    for (uint64_t version = 2; !stop_; ++version) {
      for (uint64_t p = half; p < n; ++p) FillPattern(&buf[p * kPage], kPage, p, version);
      if (!Check(region_->Write(half, n - half, &buf[half * kPage]), "write")) continue;
      std::fill(buf.begin(), buf.end(), 0);
      if (!Check(region_->Read(0, n, buf.data()), "read")) continue;
      for (uint64_t p = 0; p < n; ++p) {
        uint64_t v = 0;
        const uint64_t want = p < half ? 1 : version;
        if (!CheckPattern(&buf[p * kPage], kPage, p, &v) || v != want) {
          wrong_pages_.fetch_add(1);
          Note("page " + std::to_string(p) + " wrong in round " + std::to_string(version));
        }
      }
      rounds_.fetch_add(1);
    }
  }
  bool Check(const Status& s, const std::string& what) {
    if (s.ok()) return true;
    failed_io_.fetch_add(1);
    Note(what + ": " + s.ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return false;
  }
  void Note(const std::string& problem) {
    std::lock_guard lk(mu_);
    if (first_problem_.empty()) first_problem_ = problem;
  }

  Region* region_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rounds_{0}, failed_io_{0}, wrong_pages_{0};
  std::mutex mu_;
  std::string first_problem_;
  std::thread thread_;
};

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the multi-host harness makes network namespaces: run as root";
    const char* bin = std::getenv("TESSERA_BIN");
    ASSERT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
    bin_ = bin;
    char tmpl[] = "/tmp/tessera-netns-XXXXXX";
    dir_ = mkdtemp(tmpl);
    prefix_ = "ts" + std::to_string(getpid());
    RemoveLeftovers();
    std::string hosts = "etcd1 etcd2 etcd3 ctl1 ctl2 compute";
    for (int i = 1; i <= kMemnodes + 1; ++i) hosts += " mem" + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(Script("up " + hosts));
    made_ = true;
    ASSERT_NO_FATAL_FAILURE(EnterHost("compute"));

    std::vector<ctlplane::EtcdCluster::Options::Placement> places;
    for (int i = 1; i <= 3; ++i) places.push_back({addr_["etcd" + std::to_string(i)], Prefix("etcd" + std::to_string(i))});
    auto etcd = ctlplane::EtcdCluster::Start({.dir = dir_ + "/etcd", .placements = places});
    ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
    etcd_ = std::move(*etcd);
    for (const std::string& e : etcd_->endpoints()) endpoints_ += (endpoints_.empty() ? "" : ",") + e;
    controllers_ = addr_["ctl1"] + ":7070," + addr_["ctl2"] + ":7070";
    ASSERT_NO_FATAL_FAILURE(Start("ctl1", {"controller", "--listen", addr_["ctl1"] + ":7070", "--etcd", endpoints_}));
    // The first leads before the second runs: which one leads is known.
    ASSERT_NO_FATAL_FAILURE(WaitLeader(addr_["ctl1"] + ":7070"));
    ASSERT_NO_FATAL_FAILURE(Start("ctl2", {"controller", "--listen", addr_["ctl2"] + ":7070", "--etcd", endpoints_}));
    for (int i = 1; i <= kMemnodes; ++i) ASSERT_NO_FATAL_FAILURE(StartMemnode(i));
    auto c = Client::Connect({.controller = controllers_, .timeout_ms = 10000});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    ASSERT_TRUE(WaitStatus([](const ClusterStatus& s) { return Alive(s) == kMemnodes; }))
        << "the memory nodes registered";
  }

  void TearDown() override {
    client_.reset();
    for (auto& [host, pid] : pids_) {
      if (pid > 0) StopProcess(pid, 2000);
    }
    etcd_.reset();
    if (made_) Script("down").IgnoreError();
    if (HasFailure()) {
      std::printf("the daemons' logs are kept in %s\n", dir_.c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  // Runs scripts/netns.sh with this test's prefix; "up" fills addr_.
  Status Script(const std::string& args) {
    const std::string cmd = std::string("bash ") + TESSERA_NETNS_SCRIPT + " " + args.substr(0, args.find(' ')) +
                            " " + prefix_ + (args.find(' ') == std::string::npos ? "" : args.substr(args.find(' ')));
    FILE* out = popen((cmd + " 2>&1").c_str(), "r");
    if (out == nullptr) return Status::FromErrno(errno, "popen " + cmd);
    std::string text;
    char line[256];
    while (fgets(line, sizeof line, out) != nullptr) text += line;
    const int rc = pclose(out);
    if (rc != 0) {
      ADD_FAILURE() << cmd << " failed: " << text;
      return Internal(cmd + " failed");
    }
    std::istringstream lines(text);
    std::string host, address;
    while (lines >> host >> address) addr_[host] = address;
    return Status::Ok();
  }
  // Namespaces a run killed before its TearDown left behind (their prefix
  // names a process that is gone) are taken down.
  void RemoveLeftovers() {
    FILE* list = popen("ip netns list 2>/dev/null", "r");
    if (list == nullptr) return;
    std::set<std::string> stale;
    char line[256];
    while (fgets(line, sizeof line, list) != nullptr) {
      unsigned pid = 0;
      if (std::sscanf(line, "ts%u-", &pid) == 1 && !std::filesystem::exists("/proc/" + std::to_string(pid))) {
        stale.insert("ts" + std::to_string(pid));
      }
    }
    pclose(list);
    for (const std::string& prefix : stale) {
      const int rc = std::system(("bash " + std::string(TESSERA_NETNS_SCRIPT) + " down " + prefix).c_str());
      if (rc != 0) std::printf("could not remove namespaces %s-* left by an earlier run\n", prefix.c_str());
    }
  }
  void EnterHost(const std::string& host) {
    int fd = open(("/run/netns/" + prefix_ + "-" + host).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << "open the namespace of " << host;
    ASSERT_EQ(setns(fd, CLONE_NEWNET), 0) << "setns: " << std::strerror(errno);
    close(fd);
  }
  std::vector<std::string> Prefix(const std::string& host) {
    return {"ip", "netns", "exec", prefix_ + "-" + host};
  }
  void Start(const std::string& host, std::vector<std::string> args) {
    std::vector<std::string> argv = Prefix(host);
    argv.push_back(bin_);
    argv.insert(argv.end(), args.begin(), args.end());
    auto pid = SpawnProcess(argv, dir_ + "/" + host + ".log");
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    pids_[host] = *pid;
  }
  void StartMemnode(int i) {
    const std::string host = "mem" + std::to_string(i);
    Start(host, {"memnode", "--listen", addr_[host] + ":7071", "--controller", controllers_, "--capacity", "256M"});
  }
  void Kill(const std::string& host) {
    ::kill(pids_[host], SIGKILL);
    StopProcess(pids_[host], 0);
    pids_[host] = 0;
  }
  void WaitLeader(const std::string& addr) {
    for (int i = 0; i < 200; ++i) {
      if (Client::Connect({.controller = addr, .timeout_ms = 200}).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "controller at " << addr << " never led";
  }
  static size_t Alive(const ClusterStatus& s) {
    size_t n = 0;
    for (const NodeStatus& node : s.nodes) n += node.alive;
    return n;
  }
  const NodeStatus* Node(const ClusterStatus& s, const std::string& host) {
    for (const NodeStatus& n : s.nodes) {
      if (n.address == addr_[host] + ":7071") return &n;
    }
    return nullptr;
  }
  // Polls the cluster's status until `done` holds of it.
  template <typename Pred>
  bool WaitStatus(Pred done, int timeout_ms = 60000) {
    for (auto start = Clock::now(); MsSince(start) < timeout_ms;) {
      auto s = client_->GetClusterStatus();
      if (s.ok() && done(*s)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Waits for the writer/verifier to finish `n` more rounds.
  void WaitRounds(WriterVerifier& wv, uint64_t n, const std::string& during) {
    const uint64_t target = wv.rounds() + n;
    for (auto start = Clock::now(); MsSince(start) < 120000;) {
      if (wv.rounds() >= target) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "the writer/verifier stalled " << during << " (" << wv.first_problem() << ")";
  }

  std::string bin_, dir_, prefix_, endpoints_, controllers_;
  bool made_ = false;
  std::map<std::string, std::string> addr_;  // host -> its address
  std::map<std::string, pid_t> pids_;        // host -> its daemon
  std::unique_ptr<ctlplane::EtcdCluster> etcd_;
  std::unique_ptr<Client> client_;
};

TEST_F(NetnsTest, AWriterVerifierLosesNothingThroughFailoverEtcdLossALinkCutAndANewNode) {
  auto region = client_->CreateRegion("soak", 8ull << 20, {.redundancy = "ec:4+2"});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  WriterVerifier wv(region->get());
  ASSERT_NO_FATAL_FAILURE(WaitRounds(wv, 3, "at the start"));

  // The leader controller, kill -9: the standby takes over.
  auto killed = Clock::now();
  Kill("ctl1");
  for (int i = 0;; ++i) {
    auto r = client_->CreateRegion("probe" + std::to_string(i), 1 << 20, {.redundancy = "ec:4+2"});
    if (r.ok()) break;
    ASSERT_LT(MsSince(killed), 30000) << r.status().ToString();
  }
  std::printf("controller fail-over: kill -9 to the first region created on the new leader: %lld ms\n",
              static_cast<long long>(MsSince(killed)));
  ASSERT_NO_FATAL_FAILURE(WaitRounds(wv, 3, "after the leader controller was killed"));

  // An etcd member, kill -9 (the first: every client of etcd starts with it).
  etcd_->Kill(0);
  ASSERT_TRUE(client_->CreateRegion("after-etcd-loss", 1 << 20, {.redundancy = "ec:4+2"}).ok());
  ASSERT_NO_FATAL_FAILURE(WaitRounds(wv, 3, "after an etcd member was killed"));

  // A memory node's link, cut: its packets vanish, nothing is refused.
  // A map that names the node about to go, kept by a client that does not
  // follow maps.
  auto unwatched = Client::Connect({.controller = controllers_, .timeout_ms = 10000, .watch_maps = false});
  ASSERT_TRUE(unwatched.ok()) << unwatched.status().ToString();
  auto old_map = (*unwatched)->OpenRegion("soak");
  ASSERT_TRUE(old_map.ok());
  auto cut = Clock::now();
  ASSERT_TRUE(Script("cut mem3").ok());
  ASSERT_TRUE(WaitStatus([&](const ClusterStatus& s) {
    const NodeStatus* n = Node(s, "mem3");
    return n != nullptr && !n->alive;
  })) << "mem3 declared dead";
  std::printf("link cut to mem3 declared dead: %lld ms\n", static_cast<long long>(MsSince(cut)));
  ASSERT_NO_FATAL_FAILURE(WaitRounds(wv, 3, "with mem3 cut off"));

  // A new memory node joins: the lost fragments are rebuilt onto it.
  ASSERT_NO_FATAL_FAILURE(StartMemnode(kMemnodes + 1));
  ASSERT_TRUE(WaitStatus([&](const ClusterStatus& s) {
    const NodeStatus* n = Node(s, "mem7");
    for (const RegionSummary& r : s.regions) {
      if (r.name == "soak" && r.health != "healthy") return false;
    }
    return n != nullptr && n->alive && n->used_bytes > 0;
  })) << "the region rebuilt, onto mem7";
  ASSERT_NO_FATAL_FAILURE(WaitRounds(wv, 3, "after mem7 joined"));

  // mem3's link restored: it comes back empty, and a reader holding a map
  // that still names it reads the newest bytes.
  ASSERT_TRUE(Script("restore mem3").ok());
  ASSERT_TRUE(WaitStatus([&](const ClusterStatus& s) {
    const NodeStatus* n = Node(s, "mem3");
    return n != nullptr && n->alive && n->used_bytes == 0;
  })) << "mem3 back, empty";
  ASSERT_NO_FATAL_FAILURE(WaitRounds(wv, 3, "after mem3 came back"));
  wv.Stop();
  std::ifstream log(dir_ + "/mem3.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("dropped every fragment"), std::string::npos) << "mem3 knew its lease had gone:\n" << text;
  const uint64_t half = (*old_map)->num_pages() / 2;
  std::vector<uint8_t> buf(half * kPage);
  Status read = (*old_map)->Read(0, half, buf.data());
  ASSERT_TRUE(read.ok()) << read.ToString();
  uint64_t stale = 0, v = 0;
  for (uint64_t p = 0; p < half; ++p) stale += !CheckPattern(&buf[p * kPage], kPage, p, &v) || v != 1;
  EXPECT_EQ(stale, 0u) << "pages read wrong through the map from before the cut";

  // The operator's view of the remote cluster, from the compute host.
  FILE* status = popen((bin_ + " status --controller " + controllers_ + " 2>&1").c_str(), "r");
  ASSERT_NE(status, nullptr);
  std::string shown;
  char line[512];
  while (fgets(line, sizeof line, status) != nullptr) shown += line;
  EXPECT_EQ(pclose(status), 0) << shown;
  EXPECT_NE(shown.find(addr_["mem7"] + ":7071"), std::string::npos) << shown;
  EXPECT_NE(shown.find("soak"), std::string::npos) << shown;

  std::printf("writer/verifier: %llu rounds of %llu pages\n", static_cast<unsigned long long>(wv.rounds()),
              static_cast<unsigned long long>((*region)->num_pages()));
  EXPECT_EQ(wv.failed_io(), 0u) << wv.first_problem();
  EXPECT_EQ(wv.wrong_pages(), 0u) << wv.first_problem();
  old_map->reset();
  region->reset();
}

}  // namespace
}  // namespace tessera
