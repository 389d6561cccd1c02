// The client library against a real controller and real memory nodes (on
// threads of this process, so ASan and TSan see both sides).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/page_pattern.h"
#include "memnode/memnode.h"
#include "tessera/client.h"
#include "tests/in_process_cluster.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;

void Fill(uint8_t* p, uint64_t page, uint64_t version) { FillPattern(p, kPage, page, version); }
bool Check(const uint8_t* p, uint64_t page, uint64_t* version) { return CheckPattern(p, kPage, page, version); }

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Client::Connect({.controller = cluster_.controller_address()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }
  testing::InProcessCluster cluster_{{.memnodes = 3, .capacity_bytes = 32ull << 20}};
  std::unique_ptr<Client> client_;
};

TEST_F(ClusterTest, CreateWriteReadDelete) {
  auto r = client_->CreateRegion("basic", 8ull << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Region& region = **r;
  EXPECT_EQ(region.num_pages(), 2048u);
  std::set<std::string> homes;
  for (auto& a : region.NodeOfEachFragment()) homes.insert(a);
  EXPECT_EQ(homes.size(), 3u) << "pages spread over every node";

  std::vector<uint8_t> buf(2048 * kPage);
  for (uint64_t p = 0; p < 2048; ++p) Fill(&buf[p * kPage], p, 1);
  ASSERT_TRUE(region.Write(0, 2048, buf.data()).ok());
  std::vector<uint8_t> back(buf.size());
  ASSERT_TRUE(region.Read(0, 2048, back.data()).ok());
  EXPECT_EQ(back, buf);

  auto list = client_->ListRegions();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "basic");
  ASSERT_TRUE(client_->DeleteRegion("basic").ok());
  EXPECT_EQ(client_->OpenRegion("basic").status().code(), Code::kNotFound);
  EXPECT_EQ(client_->DeleteRegion("basic").code(), Code::kNotFound);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster_.memnode(i).store().used_bytes(), 0u);
}

TEST_F(ClusterTest, ACloneStartsEqualAndThenGoesItsOwnWay) {
  constexpr uint64_t kPages = 1024;
  auto r = client_->CreateRegion("parent", kPages * kPage);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<uint8_t> buf(kPages * kPage);
  for (uint64_t p = 0; p < kPages; p += 2) Fill(&buf[p * kPage], p, 1);  // odd pages never written
  ASSERT_TRUE((*r)->Write(0, kPages, buf.data()).ok());
  const uint64_t used_before = cluster_.memnode(0).store().used_bytes();

  auto c = client_->CloneRegion("parent", "child", 0);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->NodeOfEachFragment(), (*r)->NodeOfEachFragment()) << "a clone lives where its source does";
  EXPECT_GT(cluster_.memnode(0).store().used_bytes(), used_before);
  std::vector<uint8_t> back(buf.size());
  ASSERT_TRUE((*c)->Read(0, kPages, back.data()).ok());
  EXPECT_EQ(back, buf);

  std::vector<uint8_t> page(kPage);
  Fill(page.data(), 4, 2);
  ASSERT_TRUE((*c)->Write(4, 1, page.data()).ok());
  Fill(page.data(), 6, 3);
  ASSERT_TRUE((*r)->Write(6, 1, page.data()).ok());
  uint64_t version = 0;
  ASSERT_TRUE((*r)->Read(4, 1, page.data()).ok());
  EXPECT_TRUE(Check(page.data(), 4, &version) && version == 1) << "the child's write stays in the child";
  ASSERT_TRUE((*c)->Read(6, 1, page.data()).ok());
  EXPECT_TRUE(Check(page.data(), 6, &version) && version == 1) << "the parent's write stays in the parent";

  EXPECT_EQ(client_->CloneRegion("parent", "child", 0).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(client_->CloneRegion("nope", "x", 0).status().code(), Code::kNotFound);
  EXPECT_EQ(client_->CloneRegion("parent", "bad name!", 0).status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(client_->DeleteRegion("child").ok());
  ASSERT_TRUE(client_->DeleteRegion("parent").ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster_.memnode(i).store().used_bytes(), 0u);
}

TEST_F(ClusterTest, ARegionWhoseLeaseIsNotRenewedIsDeleted) {
  ASSERT_TRUE(client_->CreateRegion("kept", 1 << 20, {.lease_ms = 300}).ok());
  ASSERT_TRUE(client_->CreateRegion("dropped", 1 << 20, {.lease_ms = 300}).ok());
  ASSERT_TRUE(client_->CloneRegion("kept", "kept-clone", 300).ok());
  ASSERT_TRUE(client_->CreateRegion("forever", 1 << 20).ok());
  // Renew two of the leased ones until the third is gone (or long past its lease).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    ASSERT_TRUE(client_->RenewLeases({"kept", "kept-clone"}).ok());
    gone = client_->OpenRegion("dropped").status().code() == Code::kNotFound;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "a lease of 300 ms not renewed for 10 s";
  EXPECT_TRUE(client_->OpenRegion("kept").ok());
  EXPECT_TRUE(client_->OpenRegion("kept-clone").ok());
  EXPECT_TRUE(client_->OpenRegion("forever").ok());
  Status renew = client_->RenewLeases({"kept", "dropped"});
  EXPECT_EQ(renew.code(), Code::kNotFound);
  EXPECT_NE(renew.message().find("'dropped'"), std::string::npos) << renew.message();
}

TEST_F(ClusterTest, ClearErrors) {
  ASSERT_TRUE(client_->CreateRegion("a", 1 << 20).ok());
  auto dup = client_->CreateRegion("a", 1 << 20);
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_NE(dup.status().message().find("'a'"), std::string::npos);
  EXPECT_EQ(client_->CreateRegion("bad name!", 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->CreateRegion(std::string(300, 'x'), 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->CreateRegion("zero", 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->CreateRegion("odd", 10, {.page_size = 1000}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->OpenRegion("nope").status().code(), Code::kNotFound);

  auto r = client_->OpenRegion("a");
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(2 * kPage);
  Status past = (*r)->Read((*r)->num_pages() - 1, 2, buf.data());
  EXPECT_EQ(past.code(), Code::kInvalidArgument);
  EXPECT_NE(past.message().find("outside region 'a'"), std::string::npos) << past.message();
}

TEST_F(ClusterTest, CapacityExhaustionLeavesNoPartialRegion) {
  auto before = client_->GetClusterStatus();
  ASSERT_TRUE(before.ok());
  auto r = client_->CreateRegion("huge", 200ull << 20);  // the cluster has 96 MiB
  EXPECT_EQ(r.status().code(), Code::kOutOfCapacity);
  EXPECT_NE(r.status().message().find("free"), std::string::npos) << r.status().message();
  EXPECT_TRUE(client_->ListRegions()->empty());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster_.memnode(i).store().used_bytes(), 0u);
  // Filling the cluster exactly still works, and one more page does not.
  ASSERT_TRUE(client_->CreateRegion("fits", 96ull << 20).ok());
  EXPECT_EQ(client_->CreateRegion("more", kPage).status().code(), Code::kOutOfCapacity);
}

TEST_F(ClusterTest, ControllerRestartKeepsRegionsAndData) {
  auto r = client_->CreateRegion("durable", 4ull << 20);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(1024 * kPage);
  for (uint64_t p = 0; p < 1024; ++p) Fill(&buf[p * kPage], p, 7);
  ASSERT_TRUE((*r)->Write(0, 1024, buf.data()).ok());
  r->reset();
  client_.reset();

  cluster_.RestartController();
  cluster_.WaitForNodes();
  auto c = Client::Connect({.controller = cluster_.controller_address()});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto again = (*c)->OpenRegion("durable");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  std::vector<uint8_t> back(buf.size());
  ASSERT_TRUE((*again)->Read(0, 1024, back.data()).ok());
  EXPECT_EQ(back, buf);
}

TEST_F(ClusterTest, AClientRidesThroughAControllerRestart) {
  ASSERT_TRUE(client_->CreateRegion("before", 1 << 20).ok());
  cluster_.RestartController();
  cluster_.WaitForNodes();
  auto list = client_->ListRegions();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->size(), 1u);
  EXPECT_TRUE(client_->CreateRegion("after", 1 << 20).ok());
}

TEST_F(ClusterTest, AsyncQueueKeepsManyInFlight) {
  auto r = client_->CreateRegion("async", 4ull << 20);
  ASSERT_TRUE(r.ok());
  const uint64_t n = (*r)->num_pages();
  std::vector<uint8_t> buf(n * kPage);
  for (uint64_t p = 0; p < n; ++p) Fill(&buf[p * kPage], p, 3);
  auto q = (*r)->NewQueue({.depth = 64, .max_batch_pages = 8});
  std::vector<PageIo> ios;
  for (uint64_t p = 0; p < n; ++p) ios.push_back({PageIo::Kind::kWrite, p, 1, &buf[p * kPage], p});
  ASSERT_TRUE(q->Submit(ios).ok());
  std::vector<Completion> done;
  while (done.size() < n) ASSERT_TRUE(q->Reap(&done, 1, 5000).ok());
  for (auto& c : done) ASSERT_TRUE(c.status.ok()) << c.status.ToString();

  std::vector<uint8_t> back(buf.size());
  for (auto& io : ios) {
    io.kind = PageIo::Kind::kRead;
    io.buffer = &back[io.first_page * kPage];
  }
  ASSERT_TRUE(q->Submit(ios).ok());
  done.clear();
  while (done.size() < n) ASSERT_TRUE(q->Reap(&done, n - done.size(), 5000).ok());
  EXPECT_EQ(q->outstanding(), 0u);
  EXPECT_EQ(back, buf);
}

// kZero: the pages read back as zeros, and a write after it lands again.
TEST_F(ClusterTest, ZerosTakeNoBufferAndReadBackAsZeros) {
  auto r = client_->CreateRegion("zeros", 1ull << 20, {.redundancy = "ec:2+1"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const uint64_t n = (*r)->num_pages();
  std::vector<uint8_t> buf(n * kPage);
  for (uint64_t p = 0; p < n; ++p) Fill(&buf[p * kPage], p, 1);
  ASSERT_TRUE((*r)->Write(0, n, buf.data()).ok());
  auto q = (*r)->NewQueue({});
  PageIo zero{.kind = PageIo::Kind::kZero, .first_page = 8, .page_count = 100, .user_data = 7};
  ASSERT_TRUE(q->Submit({&zero, 1}).ok());
  std::vector<Completion> done;
  ASSERT_TRUE(q->Reap(&done, 1, 5000).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].user_data, 7u);
  EXPECT_TRUE(done[0].status.ok()) << done[0].status.ToString();
  std::vector<uint8_t> back(buf.size());
  ASSERT_TRUE((*r)->Read(0, n, back.data()).ok());
  for (uint64_t p = 0; p < n; ++p) {
    uint64_t version = 0;
    if (p >= 8 && p < 108) {
      EXPECT_EQ(std::count(&back[p * kPage], &back[(p + 1) * kPage], 0), kPage) << "page " << p;
    } else {
      EXPECT_TRUE(Check(&back[p * kPage], p, &version) && version == 1) << "page " << p;
    }
  }
  Fill(&buf[9 * kPage], 9, 2);
  ASSERT_TRUE((*r)->Write(9, 1, &buf[9 * kPage]).ok());
  ASSERT_TRUE((*r)->Read(9, 1, back.data()).ok());
  uint64_t version = 0;
  EXPECT_TRUE(Check(back.data(), 9, &version) && version == 2);
  PageIo bad{.kind = PageIo::Kind::kWrite, .first_page = 0, .page_count = 1};
  EXPECT_EQ(q->Submit({&bad, 1}).code(), Code::kInvalidArgument) << "only zeros go without a buffer";
}

TEST_F(ClusterTest, EightThreadsHammerOneRegion) {
  auto r = client_->CreateRegion("hammer", 2ull << 20);
  ASSERT_TRUE(r.ok());
  Region& region = **r;
  const uint64_t pages = region.num_pages();
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint64_t> version(pages, 0);  // of the pages this thread owns
      std::vector<uint8_t> page(kPage);
      for (int i = 0; i < 400; ++i) {
        uint64_t p = (rng() % (pages / 8)) * 8 + t;  // pages with p % 8 == t are ours
        if (rng() % 2) {
          Fill(page.data(), p, ++version[p]);
          if (!region.Write(p, 1, page.data()).ok()) ++bad;
        } else {
          uint64_t got = 0;
          if (!region.Read(p, 1, page.data()).ok() || (version[p] > 0 && (!Check(page.data(), p, &got) || got != version[p]))) ++bad;
        }
        // Read a page another thread owns: it must be one whole version.
        uint64_t other = rng() % pages, v = 0;
        if (!region.Read(other, 1, page.data()).ok()) ++bad;
        bool zero = std::all_of(page.begin(), page.end(), [](uint8_t b) { return b == 0; });
        if (!zero && !Check(page.data(), other, &v)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(ClusterTest, ADeadNodeFailsOnlyItsPages) {
  auto r = client_->CreateRegion("partial", 1ull << 20);
  ASSERT_TRUE(r.ok());
  Region& region = **r;
  std::string dead = cluster_.KillMemnode(0);
  std::vector<std::string> homes = region.NodeOfEachFragment();
  std::vector<uint8_t> page(kPage);
  for (uint32_t f = 0; f < homes.size(); ++f) {
    Status s = region.Read(uint64_t{f} * region.pages_per_stripe(), 1, page.data());
    if (homes[f] == dead) {
      EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
      EXPECT_NE(s.message().find(dead), std::string::npos) << s.message();
    } else {
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }
}

TEST_F(ClusterTest, AnUnreachableNodeFailsCreateCleanly) {
  // The controller still counts the node alive (no heartbeat timeout yet), so
  // placement uses it, and the allocation there fails.
  std::string dead = cluster_.KillMemnode(1);
  auto r = client_->CreateRegion("unlucky", 12ull << 20);
  ASSERT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find(dead), std::string::npos) << r.status().message();
  EXPECT_TRUE(client_->ListRegions()->empty());
  EXPECT_EQ(cluster_.memnode(0).store().used_bytes(), 0u) << "what the live node allocated was given back";
  EXPECT_EQ(cluster_.memnode(2).store().used_bytes(), 0u);
}

}  // namespace
}  // namespace tessera
