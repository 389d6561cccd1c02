// Span regions through the public API (RegionOptions::layout = "span"):
// pages written and read whole, through Region::Read/Write and a queue; a
// clone that reads the pages as they were and goes its own way; layouts
// that cannot be had are refused with the reason.
#include <vector>

#include <gtest/gtest.h>

#include "common/page_pattern.h"
#include "tessera/client.h"
#include "tests/in_process_cluster.h"

namespace tessera {
namespace {

constexpr uint32_t kPage = 4096;
constexpr uint64_t kPages = 300;  // not a whole number of rows

class SpanRegionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Client::Connect({.controller = cluster_.controller_address()});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }
  std::unique_ptr<Region> Create(const std::string& name) {
    auto r = client_->CreateRegion(name, kPages * kPage, {.redundancy = "ec:4+2", .layout = "span"});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  static std::vector<uint8_t> Pattern(uint64_t version) {
    std::vector<uint8_t> buf(kPages * kPage);
    for (uint64_t p = 0; p < kPages; ++p) FillPattern(buf.data() + p * kPage, kPage, p, version);
    return buf;
  }
  // Every page of `r` holds `version`.
  static void Expect(Region& r, uint64_t version) {
    std::vector<uint8_t> buf(kPages * kPage);
    ASSERT_TRUE(r.Read(0, kPages, buf.data()).ok());
    for (uint64_t p = 0; p < kPages; ++p) {
      uint64_t got = 0;
      ASSERT_TRUE(CheckPattern(buf.data() + p * kPage, kPage, p, &got)) << "page " << p;
      ASSERT_EQ(got, version) << "page " << p;
    }
  }

  testing::InProcessCluster cluster_{{.memnodes = 7, .capacity_bytes = 16ull << 20}};
  std::unique_ptr<Client> client_;
};

TEST_F(SpanRegionTest, PagesReadBackWholeThroughTheRegionAndAQueue) {
  auto r = Create("span");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->num_pages(), kPages);
  EXPECT_EQ(r->page_size(), kPage);
  EXPECT_EQ(r->redundancy(), "ec:4+2");
  std::vector<uint8_t> zeros(kPage, 0xff);
  ASSERT_TRUE(r->Read(7, 1, zeros.data()).ok());
  EXPECT_EQ(zeros, std::vector<uint8_t>(kPage, 0)) << "a page never written reads as zeros";
  auto v1 = Pattern(1);
  ASSERT_TRUE(r->Write(0, kPages, v1.data()).ok());
  ASSERT_NO_FATAL_FAILURE(Expect(*r, 1));
  auto v2 = Pattern(2);
  auto q = r->NewQueue({});
  std::vector<PageIo> ios;
  for (uint64_t p = 0; p < kPages; ++p) ios.push_back({PageIo::Kind::kWrite, p, 1, v2.data() + p * kPage, p});
  ASSERT_TRUE(q->Submit(ios).ok());
  std::vector<Completion> done;
  while (done.size() < kPages) ASSERT_TRUE(q->Reap(&done, kPages - done.size(), 10000).ok());
  for (const Completion& c : done) {
    ASSERT_TRUE(c.status.ok()) << c.status.ToString();
    EXPECT_NE(c.version, 0u);
  }
  q.reset();
  ASSERT_NO_FATAL_FAILURE(Expect(*r, 2));
}

TEST_F(SpanRegionTest, ACloneReadsThePagesAsTheyWereAndGoesItsOwnWay) {
  auto r = Create("parent");
  ASSERT_NE(r, nullptr);
  auto v1 = Pattern(1);
  ASSERT_TRUE(r->Write(0, kPages, v1.data()).ok());
  auto c = client_->CloneRegion("parent", "child", 0);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->num_pages(), kPages);
  ASSERT_NO_FATAL_FAILURE(Expect(**c, 1));
  auto v2 = Pattern(2), v3 = Pattern(3);
  ASSERT_TRUE(r->Write(0, kPages, v2.data()).ok());
  ASSERT_TRUE((*c)->Write(0, kPages, v3.data()).ok());
  ASSERT_NO_FATAL_FAILURE(Expect(*r, 2));
  ASSERT_NO_FATAL_FAILURE(Expect(**c, 3));
  c->reset();
  EXPECT_TRUE(client_->DeleteRegion("child").ok());
}

TEST_F(SpanRegionTest, LayoutsThatCannotBeHadAreRefused) {
  auto none = client_->CreateRegion("a", kPages * kPage, {.redundancy = "none", .layout = "span"});
  EXPECT_EQ(none.status().code(), Code::kInvalidArgument);
  EXPECT_NE(none.status().ToString().find("ec:K+M"), std::string::npos) << none.status().ToString();
  auto bogus = client_->CreateRegion("b", kPages * kPage, {.redundancy = "ec:4+2", .layout = "stripes"});
  EXPECT_EQ(bogus.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tessera
