// Redundant regions (ec:K+M, replicas:N) against a real controller and real
// memory nodes on threads of this process: reads decode around lost nodes,
// writes go on with fewer nodes, and a page with too few fragments left fails
// with a clear error while the rest of the region keeps working.
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/page_codec.h"
#include "client/version_clock.h"
#include "common/crc.h"
#include "common/page_pattern.h"
#include "net/rpc.h"
#include "proto/c2m.h"
#include "tessera/client.h"
#include "tests/in_process_cluster.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;

class RedundancyTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto c = Client::Connect({.controller = cluster_.controller_address()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    auto r = client_->CreateRegion("r", kPages * kPage, {.redundancy = GetParam()});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    region_ = std::move(*r);
    homes_ = region_->NodeOfEachFragment();
    width_ = homes_.size() / (kPages / region_->pages_per_stripe());
  }

  Status WriteAll(uint64_t version) {
    std::vector<uint8_t> buf(kPages * kPage);
    for (uint64_t p = 0; p < kPages; ++p) FillPattern(buf.data() + p * kPage, kPage, p, version);
    return region_->Write(0, kPages, buf.data());
  }

  // Reads every page alone; returns the status of each, and checks the bytes
  // of those that read.
  std::vector<Status> ReadEach(uint64_t version, const QueueOptions& qo = {}) {
    auto queue = region_->NewQueue(qo);
    std::vector<uint8_t> buf(kPages * kPage);
    std::vector<PageIo> ios;
    for (uint64_t p = 0; p < kPages; ++p) ios.push_back({PageIo::Kind::kRead, p, 1, buf.data() + p * kPage, p});
    EXPECT_TRUE(queue->Submit(ios).ok());
    std::vector<Completion> done;
    EXPECT_TRUE(queue->Reap(&done, kPages, 10000).ok());
    std::vector<Status> out(kPages);
    for (auto& c : done) out[c.user_data] = c.status;
    for (uint64_t p = 0; p < kPages; ++p) {
      uint64_t got = 0;
      if (out[p].ok() && (!CheckPattern(buf.data() + p * kPage, kPage, p, &got) || got != version)) {
        out[p] = Corruption("page " + std::to_string(p) + " read back wrong (version " + std::to_string(got) + ")");
      }
    }
    return out;
  }

  // Kills the memory node at `address`.
  void Kill(const std::string& address) {
    int i = cluster_.MemnodeAt(address);
    ASSERT_GE(i, 0) << "no memory node at " << address;
    cluster_.KillMemnode(i);
  }

  // Fragments of page p's stripe on nodes in `dead`.
  int LostFragments(uint64_t p, const std::set<std::string>& dead) const {
    uint64_t stripe = p / region_->pages_per_stripe();
    int lost = 0;
    for (size_t j = 0; j < width_; ++j) lost += dead.count(homes_[stripe * width_ + j]);
    return lost;
  }

  static constexpr uint64_t kPages = 1024;  // 64 stripes of 16 pages
  // No rebuild here: these tests are about what the client reads with nodes
  // gone, and a rebuild starting midway (a slow build takes the test past the
  // 2 s node timeout) would give lost pages back.
  testing::InProcessCluster cluster_{{.memnodes = 8, .capacity_bytes = 16ull << 20, .rebuild_delay_ms = 600'000}};
  std::unique_ptr<Client> client_;
  std::unique_ptr<Region> region_;
  std::vector<std::string> homes_;
  size_t width_ = 0;
};

TEST_P(RedundancyTest, SurvivesTwoLossesThenFailsExactlyTheLostPages) {
  ASSERT_EQ(width_, GetParam() == "ec:4+2" ? 6u : 3u);
  ASSERT_TRUE(WriteAll(1).ok());
  for (const Status& s : ReadEach(1)) ASSERT_TRUE(s.ok()) << s.ToString();

  // Stripe 0's first three fragments' nodes: the third loss costs stripe 0
  // (and any stripe on all three) its pages, and no other stripe.
  std::set<std::string> dead = {homes_[0], homes_[1]};
  for (const auto& a : dead) Kill(a);
  for (const Status& s : ReadEach(1)) ASSERT_TRUE(s.ok()) << "degraded read: " << s.ToString();
  ASSERT_TRUE(WriteAll(2).ok()) << "writes go on with two nodes down";
  for (const Status& s : ReadEach(2)) ASSERT_TRUE(s.ok()) << s.ToString();

  dead.insert(homes_[2]);
  Kill(homes_[2]);
  std::vector<Status> after = ReadEach(2);
  int failed = 0;
  for (uint64_t p = 0; p < kPages; ++p) {
    if (LostFragments(p, dead) > 2) {
      ++failed;
      EXPECT_EQ(after[p].code(), Code::kUnavailable) << "page " << p << ": " << after[p].ToString();
      EXPECT_NE(after[p].message().find("page " + std::to_string(p)), std::string::npos) << after[p].message();
    } else {
      EXPECT_TRUE(after[p].ok()) << "page " << p << " still has enough fragments: " << after[p].ToString();
    }
  }
  EXPECT_GT(failed, 0) << "some stripe should have lost three fragments";
  EXPECT_LT(failed, static_cast<int>(kPages)) << "and some should not";

  // Once the controller has declared the nodes dead, those pages' fragments
  // are gone for good: "data lost", for exactly them, and nothing else stops.
  bool lost = false;
  for (int i = 0; i < 100 && !lost; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto list = client_->ListRegions();
    ASSERT_TRUE(list.ok());
    lost = list->at(0).health == "lost";
  }
  ASSERT_TRUE(lost) << "the controller should call the region lost";
  after = ReadEach(2);
  for (uint64_t p = 0; p < kPages; ++p) {
    if (LostFragments(p, dead) > 2) {
      EXPECT_EQ(after[p].code(), Code::kDataLoss) << "page " << p << ": " << after[p].ToString();
      EXPECT_NE(after[p].ToString().find("data lost: page " + std::to_string(p) + ":"), std::string::npos)
          << after[p].ToString();
    } else {
      EXPECT_TRUE(after[p].ok()) << "page " << p << ": " << after[p].ToString();
    }
  }
  // (five nodes are left: too few for another 4+2 region)
  auto other = client_->CreateRegion("other", 64 * kPage, {.redundancy = "replicas:2"});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::vector<uint8_t> page(kPage, 7), back(kPage);
  ASSERT_TRUE((*other)->Write(3, 1, page.data()).ok());
  ASSERT_TRUE((*other)->Read(3, 1, back.data()).ok());
  EXPECT_EQ(page, back);
}

TEST_P(RedundancyTest, AskingExtraFragmentsReadsTheSameBytes) {
  ASSERT_TRUE(WriteAll(7).ok());
  for (const Status& s : ReadEach(7, {.depth = 64, .max_batch_pages = 16, .read_extra = 2})) {
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  cluster_.KillMemnode(3);
  for (const Status& s : ReadEach(7, {.depth = 64, .max_batch_pages = 16, .read_extra = 1})) {
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
}

TEST_P(RedundancyTest, RacingWritersLeaveOneWholeVersionPerPage) {
  // Four threads write the same 64 pages with their own versions while
  // a fifth reads them: every read is one writer's whole page.
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 5; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> page(kPage);
      for (int i = 0; i < 300; ++i) {
        uint64_t p = static_cast<uint64_t>(i * 7 + t) % 64;
        if (t < 4) {
          FillPattern(page.data(), kPage, p, 1 + t);
          if (!region_->Write(p, 1, page.data()).ok()) ++bad;
          continue;
        }
        uint64_t got = 0;
        bool zero = std::all_of(page.begin(), page.end(), [](uint8_t b) { return b == 0; });
        if (!region_->Read(p, 1, page.data()).ok()) ++bad;
        zero = std::all_of(page.begin(), page.end(), [](uint8_t b) { return b == 0; });
        if (!zero && (!CheckPattern(page.data(), kPage, p, &got) || got < 1 || got > 4)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// A writer that dies part-way through a write: its new version reached only
// `reached` of each page's shares. Sends those shares as that writer would
// (the page holds pattern `version`; the slots a version from its clock).
void WriteTorn(const Region& region, const std::vector<std::string>& homes, uint64_t first, uint64_t count,
               uint64_t version, int reached) {
  client::VersionClock clock;
  auto redundancy = proto::ParseRedundancy(region.redundancy());
  ASSERT_TRUE(redundancy.ok());
  auto codec = client::PageCodec::Create(*redundancy, kPage);
  ASSERT_TRUE(codec.ok());
  auto transport = net::NewTcpClientTransport({});
  ASSERT_TRUE(transport.ok());
  const int width = (*codec)->width();
  std::vector<uint8_t> page(kPage), scratch((*codec)->scratch_bytes());
  for (uint64_t p = first; p < first + count; ++p) {
    FillPattern(page.data(), kPage, p, version);
    const uint8_t* share[proto::Redundancy::kMaxWidth];
    (*codec)->Split(page.data(), scratch.data(), share);
    for (int j = 0; j < reached; ++j) {
      uint32_t fragment = static_cast<uint32_t>(p / region.pages_per_stripe() * width + j);
      auto conn = (*transport)->Connect(homes[fragment]);
      ASSERT_TRUE(conn.ok());
      const uint32_t slot = (*codec)->slot_size();
      proto::c2m::WritePages w{.region = region.id(), .epoch = 1ull << 40, .writer = 0xDEAD};
      w.pages.push_back({{fragment, static_cast<uint32_t>(p % region.pages_per_stripe())}, clock.Next(),
                         Crc32c(share[j], slot), proto::ByteSpan(share[j], slot)});
      auto reply = net::Call(**transport, **conn, w, 5000);
      ASSERT_TRUE(reply.ok()) << reply.status().ToString();
      ASSERT_TRUE(reply->unapplied.empty());
    }
  }
}

TEST_P(RedundancyTest, AWriterThatDiedMidWriteLeavesOneOfItsVersions) {
  ASSERT_TRUE(WriteAll(1).ok());
  const int k = GetParam() == "ec:4+2" ? 4 : 1;
  // Pages 0..31: version 2 reached fewer than k shares (for ec: 3 of 6, an
  // even split); pages 32..63: exactly k. Its writer never says "done".
  WriteTorn(*region_, homes_, 0, 32, 2, k == 4 ? 3 : 1);
  WriteTorn(*region_, homes_, 32, 32, 2, k);
  auto check = [&](uint64_t p, const uint8_t* bytes, std::set<uint64_t> allowed) {
    uint64_t got = 0;
    EXPECT_TRUE(CheckPattern(bytes, kPage, p, &got)) << "page " << p << " is not one whole version";
    EXPECT_TRUE(allowed.count(got)) << "page " << p << " read version " << got;
  };
  std::vector<uint8_t> buf(kPages * kPage);
  ASSERT_TRUE(region_->Read(0, kPages, buf.data()).ok());
  for (uint64_t p = 0; p < kPages; ++p) {
    // Fewer than k shares of version 2 cannot make a page: version 1 it is.
    bool torn_below_k = k > 1 && p < 32;
    check(p, buf.data() + p * kPage, p < 64 && !torn_below_k ? std::set<uint64_t>{1, 2} : std::set<uint64_t>{1});
  }
  // Another client writes over the abandoned write: each page's conflict is
  // settled (after the node's orphan timeout) and the new version lands.
  auto other = Client::Connect({.controller = cluster_.controller_address()});
  ASSERT_TRUE(other.ok());
  {
    auto region = (*other)->OpenRegion("r");
    ASSERT_TRUE(region.ok());
    std::vector<uint8_t> three(64 * kPage);
    for (uint64_t p = 0; p < 64; ++p) FillPattern(three.data() + p * kPage, kPage, p, 3);
    Status wrote = (*region)->Write(0, 64, three.data());
    ASSERT_TRUE(wrote.ok()) << wrote.ToString();
  }
  ASSERT_TRUE(region_->Read(0, kPages, buf.data()).ok());
  for (uint64_t p = 0; p < kPages; ++p) check(p, buf.data() + p * kPage, {p < 64 ? 3u : 1u});
}

INSTANTIATE_TEST_SUITE_P(Schemes, RedundancyTest, ::testing::Values("ec:4+2", "replicas:3"),
                         [](const auto& info) { return info.param == "ec:4+2" ? "Ec4p2" : "Replicas3"; });

}  // namespace
}  // namespace tessera
