// SpanQueue (client/span_queue.h) against real memory nodes: random writes,
// zeros and reads of a span region's logical pages, each read checked
// against what was last written; rows few enough that compaction runs all
// the time; a memory node killed midway.
#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "client/span_queue.h"
#include "common/page_pattern.h"
#include "tessera/client.h"
#include "tests/in_process_cluster.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;
constexpr int kK = 4;
constexpr uint64_t kPages = 256;
constexpr uint64_t kRows = kPages / kK + 2 + 6;  // the reserve and ~9 % slack

class SpanQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Client::Connect({.controller = cluster_.controller_address()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    auto r = client_->CreateRegion("rows", kRows * kK * kPage, {.page_size = kK * kPage, .redundancy = "ec:4+2"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    region_ = std::move(*r);
    auto rows = region_->NewQueue({.depth = 64, .max_batch_pages = 16});
    std::unique_ptr<client::IoQueueImpl> impl(dynamic_cast<client::IoQueueImpl*>(rows.release()));
    ASSERT_NE(impl, nullptr);
    queue_ = std::make_unique<client::SpanQueue>(state_, std::move(impl), kPage, 10000);
  }

  // Runs `ios` and checks that every one completed ok.
  void Run(const std::vector<PageIo>& ios) {
    ASSERT_TRUE(queue_->Submit(ios).ok());
    std::vector<Completion> done;
    while (done.size() < ios.size()) {
      auto n = queue_->Reap(&done, ios.size() - done.size(), 10000);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
    }
    for (const Completion& c : done) ASSERT_TRUE(c.status.ok()) << "op " << c.user_data << ": " << c.status.ToString();
    EXPECT_EQ(queue_->outstanding(), 0u);
  }

  // Reads every page and checks it against the model (0: zeros).
  void CheckAll() {
    std::vector<uint8_t> buf(kPages * kPage, 0xee);
    Run({{PageIo::Kind::kRead, 0, static_cast<uint32_t>(kPages), buf.data(), 0}});
    for (uint64_t p = 0; p < kPages; ++p) {
      const uint8_t* page = buf.data() + p * kPage;
      if (model_[p] == 0) {
        ASSERT_TRUE(std::all_of(page, page + kPage, [](uint8_t b) { return b == 0; })) << "page " << p << " is zeros";
        continue;
      }
      uint64_t got = 0;
      ASSERT_TRUE(CheckPattern(page, kPage, p, &got)) << "page " << p << " is not whole";
      ASSERT_EQ(got, model_[p]) << "page " << p;
    }
  }

  // Rounds of: a batch of distinct pages written, a few zeroed, a few read.
  void RandomRounds(int rounds, std::mt19937_64& rng) {
    for (int round = 0; round < rounds; ++round) {
      std::vector<uint64_t> pages(kPages);
      for (uint64_t p = 0; p < kPages; ++p) pages[p] = p;
      std::shuffle(pages.begin(), pages.end(), rng);
      pages.resize(1 + rng() % 40);
      std::vector<std::vector<uint8_t>> bufs;
      std::vector<PageIo> ios;
      for (uint64_t p : pages) {
        model_[p] = ++version_;
        bufs.emplace_back(kPage);
        FillPattern(bufs.back().data(), kPage, p, model_[p]);
        ios.push_back({PageIo::Kind::kWrite, p, 1, bufs.back().data(), p});
      }
      ASSERT_NO_FATAL_FAILURE(Run(ios));
      for (int z = 0; z < 3; ++z) {
        uint64_t p = rng() % kPages;
        model_[p] = 0;
        ASSERT_NO_FATAL_FAILURE(Run({{PageIo::Kind::kZero, p, 1, nullptr, p}}));
      }
      for (int r = 0; r < 8; ++r) {
        uint64_t p = rng() % kPages;
        std::vector<uint8_t> buf(kPage);
        ASSERT_NO_FATAL_FAILURE(Run({{PageIo::Kind::kRead, p, 1, buf.data(), p}}));
        uint64_t got = 0;
        if (model_[p] == 0) {
          ASSERT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; })) << "page " << p;
        } else {
          ASSERT_TRUE(CheckPattern(buf.data(), kPage, p, &got) && got == model_[p]) << "page " << p;
        }
      }
    }
  }

  testing::InProcessCluster cluster_{{.memnodes = 6, .capacity_bytes = 16ull << 20, .rebuild_delay_ms = 600'000}};
  std::unique_ptr<Client> client_;
  std::unique_ptr<Region> region_;
  std::shared_ptr<client::SpanState> state_ = std::make_shared<client::SpanState>(kPages, kRows, kK);
  client::SpanMap& map_ = state_->map;
  std::unique_ptr<client::SpanQueue> queue_;
  std::vector<uint64_t> model_ = std::vector<uint64_t>(kPages, 0);
  uint64_t version_ = 0;
};

TEST_F(SpanQueueTest, PagesReadBackAsLastWrittenWhileRowsAreCompacted) {
  std::mt19937_64 rng(11);
  ASSERT_NO_FATAL_FAILURE(RandomRounds(150, rng));
  ASSERT_NO_FATAL_FAILURE(CheckAll());
  EXPECT_GT(queue_->rows_compacted(), 0u) << "the slack is small enough that rows had to be compacted";
}

TEST_F(SpanQueueTest, AFullRegionIsWrittenAndReadWhole) {
  std::vector<uint8_t> buf(kPages * kPage);
  for (uint64_t p = 0; p < kPages; ++p) FillPattern(buf.data() + p * kPage, kPage, p, model_[p] = ++version_);
  ASSERT_NO_FATAL_FAILURE(Run({{PageIo::Kind::kWrite, 0, static_cast<uint32_t>(kPages), buf.data(), 0}}));
  ASSERT_NO_FATAL_FAILURE(CheckAll());
  // Rewriting all of it needs every row it leaves: compaction makes them.
  for (uint64_t p = 0; p < kPages; ++p) FillPattern(buf.data() + p * kPage, kPage, p, model_[p] = ++version_);
  ASSERT_NO_FATAL_FAILURE(Run({{PageIo::Kind::kWrite, 0, static_cast<uint32_t>(kPages), buf.data(), 0}}));
  ASSERT_NO_FATAL_FAILURE(CheckAll());
  EXPECT_EQ(map_.free_rows(), kRows - kPages / kK) << "the first write's rows are all free again";
}

TEST_F(SpanQueueTest, AMemoryNodeKilledMidwayLosesNothing) {
  std::mt19937_64 rng(12);
  ASSERT_NO_FATAL_FAILURE(RandomRounds(40, rng));
  cluster_.KillMemnode(2);
  ASSERT_NO_FATAL_FAILURE(CheckAll());
  ASSERT_NO_FATAL_FAILURE(RandomRounds(40, rng));
  ASSERT_NO_FATAL_FAILURE(CheckAll());
}

// Rows left with three live pages each and no free row beyond the reserve,
// then three of the six nodes gone: the compaction a write needs cannot read
// the pages it would move, and the write fails with the reason instead of
// the queue trying the same rows forever.
TEST_F(SpanQueueTest, AWriteThatNeedsAnImpossibleCompactionFails) {
  std::vector<uint8_t> buf(kPages * kPage);
  for (uint64_t p = 0; p < kPages; ++p) FillPattern(buf.data() + p * kPage, kPage, p, 1);
  ASSERT_NO_FATAL_FAILURE(Run({{PageIo::Kind::kWrite, 0, static_cast<uint32_t>(kPages), buf.data(), 0}}));
  std::vector<PageIo> every_fourth;
  for (uint64_t p = 0; p < 20 * kK; p += kK) every_fourth.push_back({PageIo::Kind::kWrite, p, 1, buf.data() + p * kPage, p});
  ASSERT_NO_FATAL_FAILURE(Run(every_fourth));
  ASSERT_EQ(map_.free_rows(), 3u) << "the reserve, and nothing beyond it";
  for (int i : {0, 1, 2}) cluster_.KillMemnode(i);
  ASSERT_TRUE(queue_->Submit({{{PageIo::Kind::kWrite, 1, 1, buf.data() + kPage, 7}}}).ok());
  std::vector<Completion> done;
  auto n = queue_->Reap(&done, 1, 60000);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_FALSE(done[0].status.ok());
  EXPECT_NE(done[0].status.ToString().find("compaction"), std::string::npos) << done[0].status.ToString();
}

TEST_F(SpanQueueTest, BadIoIsRefusedWhole) {
  std::vector<uint8_t> buf(kPage);
  EXPECT_EQ(queue_->Submit({{{PageIo::Kind::kRead, 0, 1, buf.data(), 0}, {PageIo::Kind::kWrite, kPages, 1, buf.data(), 1}}})
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(queue_->Submit({{{PageIo::Kind::kWrite, 0, 1, nullptr, 0}}}).code(), Code::kInvalidArgument);
  EXPECT_EQ(queue_->outstanding(), 0u);
}

}  // namespace
}  // namespace tessera
