// Share reads (client/page_op.h) against real memory nodes: the read a span
// region's fault makes — one whole 4 KiB page that is one data share of an
// ec:4+2 row — from its one node when that node holds the expected version,
// decoded from the row when the node is gone, and refused when the row holds
// another version.
#include <algorithm>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "client/io_queue.h"
#include "common/page_pattern.h"
#include "tessera/client.h"
#include "tests/in_process_cluster.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;
constexpr int kK = 4;
constexpr uint32_t kRow = kK * kPage;
constexpr uint64_t kRows = 64;

class ShareReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Client::Connect({.controller = cluster_.controller_address()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    auto r = client_->CreateRegion("rows", kRows * kRow, {.page_size = kRow, .redundancy = "ec:4+2"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    region_ = std::move(*r);
    queue_ = region_->NewQueue({});
    impl_ = dynamic_cast<client::IoQueueImpl*>(queue_.get());
    ASSERT_NE(impl_, nullptr);
  }

  // Writes every row, column c of row r holding logical page r*k+c; returns
  // the version each row was stored at.
  std::vector<uint64_t> WriteRows() {
    std::vector<uint8_t> row(kRow);
    std::vector<PageIo> ios;
    std::vector<std::vector<uint8_t>> bufs(kRows, std::vector<uint8_t>(kRow));
    for (uint64_t r = 0; r < kRows; ++r) {
      for (int c = 0; c < kK; ++c) FillPattern(bufs[r].data() + c * kPage, kPage, r * kK + c, 1);
      ios.push_back({PageIo::Kind::kWrite, r, 1, bufs[r].data(), r});
    }
    EXPECT_TRUE(queue_->Submit(ios).ok());
    std::vector<Completion> done;
    EXPECT_TRUE(queue_->Reap(&done, kRows, 10000).ok());
    std::vector<uint64_t> versions(kRows, 0);
    for (const Completion& c : done) {
      EXPECT_TRUE(c.status.ok()) << c.status.ToString();
      versions[c.user_data] = c.version;
    }
    for (uint64_t v : versions) EXPECT_NE(v, 0u) << "a write's completion names its version";
    return versions;
  }

  // Reads column c of row r at `expect`; returns the status, and checks
  // the bytes when it read.
  Status ReadShare(uint64_t r, int c, uint64_t expect) {
    std::vector<uint8_t> buf(kPage);
    Status s = impl_->SubmitShareRead(r, c, expect, buf.data(), 99);
    if (!s.ok()) return s;
    std::vector<Completion> done;
    TS_RETURN_IF_ERROR(queue_->Reap(&done, 1, 10000).status());
    if (done.size() != 1 || done[0].user_data != 99) return Internal("no completion");
    if (!done[0].status.ok()) return done[0].status;
    uint64_t got = 0;
    if (!CheckPattern(buf.data(), kPage, r * kK + static_cast<uint64_t>(c), &got) || got != 1) {
      return Corruption("row " + std::to_string(r) + " column " + std::to_string(c) + " read back wrong");
    }
    return Status::Ok();
  }

  testing::InProcessCluster cluster_{{.memnodes = 6, .capacity_bytes = 16ull << 20, .rebuild_delay_ms = 600'000}};
  std::unique_ptr<Client> client_;
  std::unique_ptr<Region> region_;
  std::unique_ptr<IoQueue> queue_;
  client::IoQueueImpl* impl_ = nullptr;
};

TEST_F(ShareReadTest, EachColumnReadsAloneAtItsVersion) {
  std::vector<uint64_t> versions = WriteRows();
  for (uint64_t r = 0; r < kRows; ++r) {
    for (int c = 0; c < kK; ++c) ASSERT_TRUE(ReadShare(r, c, versions[r]).ok()) << "row " << r << " column " << c;
  }
}

TEST_F(ShareReadTest, AColumnWhoseNodeIsGoneIsDecodedFromTheRow) {
  std::vector<uint64_t> versions = WriteRows();
  // Fragment 1 holds column 1 of the first stripe's rows.
  const std::string gone = region_->NodeOfEachFragment()[1];
  cluster_.KillMemnode(cluster_.MemnodeAt(gone));
  for (uint64_t r = 0; r < std::min<uint64_t>(kRows, region_->pages_per_stripe()); ++r) {
    for (int c = 0; c < kK; ++c) ASSERT_TRUE(ReadShare(r, c, versions[r]).ok()) << "row " << r << " column " << c;
  }
}

TEST_F(ShareReadTest, AColumnNeedsOnlyItsOwnNode) {
  std::vector<uint64_t> versions = WriteRows();
  // Three of the first stripe's six nodes gone: no row of it can be decoded,
  // but column 0 is whole on its node.
  const std::vector<std::string> homes = region_->NodeOfEachFragment();
  for (int j : {1, 2, 3}) cluster_.KillMemnode(cluster_.MemnodeAt(homes[j]));
  EXPECT_TRUE(ReadShare(0, 0, versions[0]).ok());
  EXPECT_FALSE(ReadShare(0, 1, versions[0]).ok()) << "column 1 needs its node or a decode";
}

TEST_F(ShareReadTest, ARowHoldingAnotherVersionIsDataLossNotOtherBytes) {
  std::vector<uint64_t> versions = WriteRows();
  EXPECT_EQ(ReadShare(3, 2, versions[3] - 1).code(), Code::kDataLoss);
  EXPECT_TRUE(ReadShare(3, 2, versions[3]).ok()) << "the queue goes on";
}

TEST_F(ShareReadTest, BadArgumentsAreRefusedBeforeAnythingIsSent) {
  std::vector<uint8_t> buf(kPage);
  EXPECT_EQ(impl_->SubmitShareRead(0, kK, 1, buf.data(), 0).code(), Code::kInvalidArgument) << "a parity share";
  EXPECT_EQ(impl_->SubmitShareRead(0, -1, 1, buf.data(), 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(impl_->SubmitShareRead(kRows, 0, 1, buf.data(), 0).code(), Code::kInvalidArgument) << "past the end";
  EXPECT_EQ(impl_->SubmitShareRead(0, 0, 0, buf.data(), 0).code(), Code::kInvalidArgument) << "no version";
  EXPECT_EQ(impl_->SubmitShareRead(0, 0, 1, nullptr, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(queue_->outstanding(), 0u);
}

}  // namespace
}  // namespace tessera
