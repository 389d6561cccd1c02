// The memory node's handlers driven directly with encoded frames.
#include "memnode/handlers.h"

#include <gtest/gtest.h>

#include "common/crc.h"
#include "proto/c2m.h"
#include "proto/ctl2m.h"

namespace tessera::memnode {
namespace {

using proto::Bytes;
using proto::ByteSpan;

struct Reply {
  proto::FrameHeader header;
  Bytes body;
  Status status() const { return proto::ReplyStatus(header, body); }
};

template <typename M>
Reply Invoke(void (*handler)(FragmentStore&, const proto::FrameHeader&, ByteSpan, Bytes*), FragmentStore& s,
          const M& m) {
  Bytes body;
  proto::Writer w(&body);
  m.Encode(w);
  proto::FrameHeader req{.opcode = static_cast<uint8_t>(M::kOp), .request_id = 5};
  Bytes out;
  handler(s, req, body, &out);
  Reply r;
  r.header = *proto::DecodeHeader(ByteSpan(out.data(), proto::kHeaderSize));
  EXPECT_EQ(r.header.request_id, 5u);
  EXPECT_EQ(r.header.body_len, out.size() - proto::kHeaderSize) << "exactly one reply frame";
  r.body.assign(out.begin() + proto::kHeaderSize, out.end());
  return r;
}

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proto::ctl2m::AllocFragments a{.region = 1, .epoch = 4, .fragments = {{0, 8, 4096}, {2, 8, 4096}}};
    ASSERT_TRUE(Invoke(HandleAllocFragments, store_, a).status().ok());
  }
  static Bytes Page(uint8_t fill) { return Bytes(4096, fill); }
  static proto::c2m::WritePage Put(uint32_t fragment, uint32_t slot, uint64_t version, const Bytes& data) {
    return {{fragment, slot}, version, Crc32c(data.data(), data.size()), data};
  }
  // Reads one slot: its version and first byte.
  std::pair<uint64_t, uint8_t> Get(uint32_t fragment, uint32_t slot, uint64_t epoch = 4) {
    Reply rep = Invoke(HandleReadPages, store_, proto::c2m::ReadPages{.region = 1, .epoch = epoch,
                                                                      .pages = {{fragment, slot}}});
    EXPECT_TRUE(rep.status().ok()) << rep.status().ToString();
    auto got = proto::c2m::ReadPagesReply::Decode(rep.body);
    if (!got.ok()) return {~0ull, 0};
    return {got->pages[0].version, got->pages[0].data[0]};
  }

  FragmentStore store_{1 << 20};
};

TEST_F(HandlersTest, WriteThenReadBack) {
  Bytes a = Page(1), b = Page(2);
  proto::c2m::WritePages w{.region = 1, .epoch = 4, .pages = {Put(0, 3, 10, a), Put(2, 7, 11, b)}};
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  proto::c2m::ReadPages r{.region = 1, .epoch = 4, .pages = {{2, 7}, {0, 3}, {0, 4}}};
  Reply rep = Invoke(HandleReadPages, store_, r);
  ASSERT_TRUE(rep.status().ok()) << rep.status().ToString();
  auto got = proto::c2m::ReadPagesReply::Decode(rep.body);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->pages.size(), 3u);
  EXPECT_EQ(Bytes(got->pages[0].data.begin(), got->pages[0].data.end()), b);
  EXPECT_EQ(Bytes(got->pages[1].data.begin(), got->pages[1].data.end()), a);
  EXPECT_EQ(got->pages[2].data[0], 0) << "never written";
  EXPECT_EQ(got->pages[0].version, 11u);
  EXPECT_EQ(got->pages[1].version, 10u);
  EXPECT_EQ(got->pages[2].version, 0u);
  for (auto& p : got->pages) EXPECT_EQ(p.crc, Crc32c(p.data.data(), p.data.size()));
}

TEST_F(HandlersTest, OnlyANewerVersionLands) {
  auto write = [&](uint64_t version, uint8_t fill) {
    Bytes data = Page(fill);
    proto::c2m::WritePages w{.region = 1, .epoch = 4, .pages = {Put(0, 2, version, data)}};
    ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  };
  write(20, 1);
  write(19, 2);  // an older write arriving late, or a rebuild that was overtaken
  EXPECT_EQ(Get(0, 2), std::make_pair(uint64_t{20}, uint8_t{1}));
  write(20, 3);  // the same version again (a retry) changes nothing
  EXPECT_EQ(Get(0, 2), std::make_pair(uint64_t{20}, uint8_t{1}));
  write(21, 4);
  EXPECT_EQ(Get(0, 2), std::make_pair(uint64_t{21}, uint8_t{4}));
}

TEST_F(HandlersTest, SetEpochRaisesTheBarButNeverLowersIt) {
  EXPECT_TRUE(Invoke(HandleSetEpoch, store_, proto::ctl2m::SetEpoch{.region = 1, .epoch = 9}).status().ok());
  proto::c2m::ReadPages r{.region = 1, .epoch = 8, .pages = {{0, 0}}};
  EXPECT_EQ(Invoke(HandleReadPages, store_, r).status().code(), Code::kStaleMap);
  EXPECT_TRUE(Invoke(HandleSetEpoch, store_, proto::ctl2m::SetEpoch{.region = 1, .epoch = 2}).status().ok());
  EXPECT_EQ(Invoke(HandleReadPages, store_, r).status().code(), Code::kStaleMap);
  EXPECT_EQ(Get(0, 0, 9).first, 0u);
  EXPECT_TRUE(Invoke(HandleSetEpoch, store_, proto::ctl2m::SetEpoch{.region = 5, .epoch = 1}).status().ok())
      << "a region the node does not hold";
}

TEST_F(HandlersTest, AnOlderMapIsRefused) {
  proto::c2m::ReadPages r{.region = 1, .epoch = 3, .pages = {{0, 0}}};
  EXPECT_EQ(Invoke(HandleReadPages, store_, r).status().code(), Code::kStaleMap);
  Bytes data = Page(7);
  proto::c2m::WritePages w{.region = 1, .epoch = 3, .pages = {Put(0, 0, 5, data)}};
  EXPECT_EQ(Invoke(HandleWritePages, store_, w).status().code(), Code::kStaleMap);
  EXPECT_EQ(Get(0, 0, /*epoch=*/6).first, 0u) << "refused write left the slot alone";
  // A client ahead of the node gets through but does not move the node's
  // epoch: a client with the controller's epoch 4 still does.
  EXPECT_EQ(Get(0, 0, /*epoch=*/4).first, 0u);
}

TEST_F(HandlersTest, ABadPageInABatchWritesNothing) {
  Bytes a = Page(9);
  uint32_t crc = Crc32c(a.data(), a.size());
  proto::c2m::WritePages w{.region = 1, .epoch = 4, .pages = {{{0, 0}, 1, crc, a}, {{0, 8}, 1, crc, a}}};  // slot 8 is past the end
  EXPECT_EQ(Invoke(HandleWritePages, store_, w).status().code(), Code::kInvalidArgument);
  w.pages[1] = {{1, 0}, 1, crc, a};  // fragment 1 is not here
  EXPECT_EQ(Invoke(HandleWritePages, store_, w).status().code(), Code::kNotFound);
  w.pages[1] = {{0, 1}, 1, crc ^ 1, a};  // corrupted in transit
  EXPECT_EQ(Invoke(HandleWritePages, store_, w).status().code(), Code::kCorruption);
  Bytes small(100, 0);
  w.pages[1] = {{0, 1}, 1, Crc32c(small.data(), small.size()), small};
  EXPECT_EQ(Invoke(HandleWritePages, store_, w).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_.Lookup(1, 0, 0)->data[0], 0) << "the good page of the batch was not written";
}

TEST_F(HandlersTest, CorruptionAtRestIsDetectedOnRead) {
  SlotView v = *store_.Lookup(1, 0, 5);
  v.data[17] = 0x42;  // a bit flip in DRAM, behind the store's back
  proto::c2m::ReadPages r{.region = 1, .epoch = 4, .pages = {{0, 5}}};
  EXPECT_EQ(Invoke(HandleReadPages, store_, r).status().code(), Code::kCorruption);
}

TEST_F(HandlersTest, FreeRegionReportsBytes) {
  Reply rep = Invoke(HandleFreeRegion, store_, proto::ctl2m::FreeRegion{.region = 1});
  ASSERT_TRUE(rep.status().ok());
  EXPECT_EQ(proto::ctl2m::FreeRegionReply::Decode(rep.body)->freed_bytes, 16u * 4096);
  proto::c2m::ReadPages r{.region = 1, .epoch = 4, .pages = {{0, 0}}};
  EXPECT_EQ(Invoke(HandleReadPages, store_, r).status().code(), Code::kNotFound);
}

TEST_F(HandlersTest, MalformedBodiesGetErrorReplies) {
  for (auto* h : {HandleReadPages, HandleWritePages, HandleAllocFragments, HandleFreeRegion, HandleSetEpoch}) {
    Bytes junk = {1, 2, 3, 4, 5};
    Bytes out;
    h(store_, {.opcode = 1, .request_id = 9}, junk, &out);
    auto header = proto::DecodeHeader(ByteSpan(out.data(), proto::kHeaderSize));
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header->status, static_cast<uint16_t>(Code::kProtocol));
  }
}

}  // namespace
}  // namespace tessera::memnode
