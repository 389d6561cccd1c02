// The real daemons as separate processes (the `tessera` binary, as `tessera
// up` runs them), driven over loopback: hostile bytes, a controller killed
// and restarted, memory given back to the OS.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include <gtest/gtest.h>

#include "cmd/local_cluster.h"
#include "common/crc.h"
#include "common/page_pattern.h"
#include "net/socket.h"
#include "proto/c2m.h"
#include "proto/frame.h"
#include "tessera/client.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;

uint64_t RssOf(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/statm").c_str(), "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("TESSERA_BIN");
    ASSERT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
    auto c = cmd::LocalCluster::Start({.memnodes = 3, .capacity_bytes = 512ull << 20, .heartbeat_ms = 100,
                                       .binary = bin});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
    Connect();
  }
  void Connect() {
    auto c = Client::Connect({.controller = cluster_->controller_address()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }
  void WritePattern(Region& r, uint64_t version) {
    std::vector<uint8_t> buf(r.num_pages() * kPage);
    for (uint64_t p = 0; p < r.num_pages(); ++p) FillPattern(&buf[p * kPage], kPage, p, version);
    ASSERT_TRUE(r.Write(0, r.num_pages(), buf.data()).ok());
  }
  void ExpectPattern(Region& r, uint64_t version) {
    std::vector<uint8_t> buf(r.num_pages() * kPage);
    ASSERT_TRUE(r.Read(0, r.num_pages(), buf.data()).ok());
    uint64_t bad = 0, v = 0;
    for (uint64_t p = 0; p < r.num_pages(); ++p) bad += !CheckPattern(&buf[p * kPage], kPage, p, &v) || v != version;
    EXPECT_EQ(bad, 0u);
  }

  std::unique_ptr<cmd::LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(DaemonTest, ControllerRestartKeepsEveryRegionAndItsData) {
  for (const char* name : {"one", "two"}) {
    auto r = client_->CreateRegion(name, 8ull << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    WritePattern(**r, name[0]);
  }
  client_.reset();
  cluster_->Kill(0, SIGKILL);
  ASSERT_TRUE(cluster_->RestartController().ok());
  Connect();
  EXPECT_EQ(client_->ListRegions()->size(), 2u);
  for (const char* name : {"one", "two"}) {
    auto r = client_->OpenRegion(name);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectPattern(**r, name[0]);
  }
}

TEST_F(DaemonTest, DeletingARegionGivesItsMemoryBack) {
  auto r = client_->CreateRegion("big", 384ull << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  WritePattern(**r, 1);
  uint64_t before = 0;
  for (size_t i = 1; i <= 3; ++i) before += RssOf(cluster_->pids()[i]);
  EXPECT_GT(before, 384ull << 20);
  r->reset();
  ASSERT_TRUE(client_->DeleteRegion("big").ok());
  uint64_t after = 0;
  for (size_t i = 1; i <= 3; ++i) after += RssOf(cluster_->pids()[i]);
  EXPECT_LT(after + (360ull << 20), before) << "RSS before " << before << ", after " << after;
}

TEST_F(DaemonTest, CapacityExhaustionIsClearAndLeavesNothing) {
  auto r = client_->CreateRegion("too-big", 2ull << 30);
  ASSERT_EQ(r.status().code(), Code::kOutOfCapacity);
  EXPECT_NE(r.status().message().find("1.5 GiB free"), std::string::npos) << r.status().message();
  auto s = client_->GetClusterStatus();
  ASSERT_TRUE(s.ok());
  for (auto& n : s->nodes) EXPECT_EQ(n.used_bytes, 0u);
  EXPECT_TRUE(s->regions.empty());
}

// Sends raw bytes to `addr` on a fresh connection and closes it.
void SendRaw(const std::string& addr, const std::vector<uint8_t>& bytes) {
  auto fd = net::Connect(addr, 1000);
  ASSERT_TRUE(fd.ok());
  ::send(fd->get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  usleep(20000);
}

TEST_F(DaemonTest, MalformedFramesLeaveEveryDaemonServing) {
  auto region = client_->CreateRegion("victim", 1ull << 20);
  ASSERT_TRUE(region.ok());
  WritePattern(**region, 5);
  std::vector<std::string> targets = {cluster_->controller_address()};
  for (auto& a : (*region)->NodeOfEachFragment()) {
    if (std::find(targets.begin(), targets.end(), a) == targets.end()) targets.push_back(a);
  }
  std::mt19937 rng(42);
  for (const std::string& addr : targets) {
    std::vector<uint8_t> random(4096);
    for (auto& b : random) b = static_cast<uint8_t>(rng());
    SendRaw(addr, random);
    std::vector<uint8_t> header;
    proto::AppendHeader({.opcode = static_cast<uint8_t>(proto::Op::kC2mReadPages), .body_len = 64}, &header);
    SendRaw(addr, std::vector<uint8_t>(header.begin(), header.begin() + 7));  // truncated header
    SendRaw(addr, header);                                                    // truncated body
    header.clear();
    proto::AppendHeader({.opcode = static_cast<uint8_t>(proto::Op::kC2mReadPages), .body_len = 0xFFFFFFF0}, &header);
    SendRaw(addr, header);  // huge length
    header.clear();
    proto::AppendHeader({.opcode = 0x6e, .body_len = 0}, &header);
    SendRaw(addr, header);  // unknown opcode
  }
  // A well-framed read of a page past the fragment's end gets an error reply.
  const std::string node = (*region)->NodeOfEachFragment()[0];
  proto::c2m::ReadPages bad{.region = (*region)->id(), .epoch = 1000, .pages = {{0, 1u << 30}}};
  std::vector<uint8_t> frame;
  proto::AppendFrame(static_cast<uint8_t>(bad.kOp), 1, bad, &frame);
  auto fd = net::Connect(node, 1000);
  ASSERT_TRUE(fd.ok());
  ASSERT_EQ(::send(fd->get(), frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  std::vector<uint8_t> reply(proto::kHeaderSize);
  size_t got = 0;
  while (got < reply.size()) {
    ssize_t n = ::recv(fd->get(), reply.data() + got, reply.size() - got, 0);
    if (n < 0 && errno == EAGAIN) {
      usleep(1000);
      continue;
    }
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  auto h = proto::DecodeHeader(reply);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->status, static_cast<uint16_t>(Code::kInvalidArgument));

  // Every daemon still serves the next client, and the data is intact.
  for (size_t i = 0; i < cluster_->pids().size(); ++i) EXPECT_GT(cluster_->pids()[i], 0);
  int status;
  EXPECT_EQ(cluster_->ReapExited(&status), 0) << "a daemon died";
  region->reset();  // a Region goes before its Client
  Connect();
  auto again = client_->OpenRegion("victim");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ExpectPattern(**again, 5);
}

}  // namespace
}  // namespace tessera
