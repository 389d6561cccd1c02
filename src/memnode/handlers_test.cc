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

// A write that does not land is never acknowledged silently: the reply
// names it, with the version the slot holds.
TEST_F(HandlersTest, AWriteThatDoesNotLandIsNamedWithTheVersionTheSlotHolds) {
  Bytes a = Page(1), b = Page(2);
  proto::c2m::WritePages w{.region = 1, .epoch = 4, .pages = {Put(0, 1, 30, a)}};
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  w.pages = {Put(0, 0, 5, b), Put(0, 1, 29, b), Put(0, 2, 31, b), Put(0, 1, 30, b)};
  Reply rep = Invoke(HandleWritePages, store_, w);
  ASSERT_TRUE(rep.status().ok()) << rep.status().ToString();
  auto got = proto::c2m::WritePagesReply::Decode(rep.body);
  ASSERT_TRUE(got.ok());
  using Reason = proto::c2m::Unapplied::Reason;
  EXPECT_EQ(got->unapplied, (std::vector<proto::c2m::Unapplied>{{1, Reason::kSuperseded, 30}, {3, Reason::kSuperseded, 30}}));
  EXPECT_EQ(Get(0, 1), std::make_pair(uint64_t{30}, uint8_t{1}));
  EXPECT_EQ(Get(0, 0), std::make_pair(uint64_t{5}, uint8_t{2}));
}

// A version far ahead of the node's clock would pin its page for everyone:
// the whole request is refused, naming both clocks, and nothing changes.
TEST(HandlersClockTest, AVersionFromTheFutureIsRefusedAndChangesNothing) {
  const uint64_t now_us = 1'796'000'000'000'000;  // late 2026
  FragmentStore store(1 << 20, {}, VersionLimit{.max_ahead_us = 5'000'000, .now_us = [&] { return now_us; }});
  proto::ctl2m::AllocFragments a{.region = 1, .epoch = 4, .fragments = {{0, 8, 4096}}};
  ASSERT_TRUE(Invoke(HandleAllocFragments, store, a).status().ok());
  Bytes data(4096, 9);
  auto at = [](uint64_t us) { return us << proto::c2m::kVersionNonceBits | 0x123; };
  auto put = [&](uint32_t slot, uint64_t version) {
    return proto::c2m::WritePage{{0, slot}, version, Crc32c(data.data(), data.size()), data};
  };
  for (uint64_t version : std::vector<uint64_t>{at(now_us + 5'000'001), at(now_us + 3'600'000'000ull), ~0ull}) {
    proto::c2m::WritePages w{.region = 1, .epoch = 4, .pages = {put(0, at(now_us)), put(1, version)}};
    for (auto mode : {proto::c2m::WriteMode::kWrite, proto::c2m::WriteMode::kCommit, proto::c2m::WriteMode::kResolve}) {
      w.mode = mode;
      Status s = Invoke(HandleWritePages, store, w).status();
      EXPECT_EQ(s.code(), Code::kClockSkew) << s.ToString();
      EXPECT_NE(s.message().find("this memory node's reads 2026-"), std::string::npos) << s.message();
    }
  }
  for (uint32_t slot : {0u, 1u}) EXPECT_EQ(*store.Lookup(1, 0, slot)->version, 0u) << "nothing was written";
  proto::c2m::WritePages ok{.region = 1, .epoch = 4, .pages = {put(0, at(now_us + 5'000'000))}};
  EXPECT_TRUE(Invoke(HandleWritePages, store, ok).status().ok()) << "within the limit";
}

// A write of zeros carries none; the slot reads back as zeros, older writes
// stay out, and a memory page that now holds only zeros goes back to the OS.
TEST_F(HandlersTest, AWriteOfZerosSendsNoneAndGivesTheMemoryBack) {
  // Fragment 5 has 1 KiB slots (an ec:4+2 share): four to a memory page.
  proto::ctl2m::AllocFragments a{.region = 1, .epoch = 4, .fragments = {{5, 16, 1024}}};
  ASSERT_TRUE(Invoke(HandleAllocFragments, store_, a).status().ok());
  const uint64_t before = store_.ResidentBytes();
  Bytes share(1024, 7);
  proto::c2m::WritePages w{.region = 1, .epoch = 4};
  for (uint32_t slot = 0; slot < 8; ++slot) w.pages.push_back(Put(5, slot, 10, share));
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  EXPECT_EQ(store_.ResidentBytes(), before + 2 * 4096);
  auto zeros = [](uint32_t slot, uint64_t version) {
    return proto::c2m::WritePage{{5, slot}, version, Crc32cOfZeros(1024), {}};
  };
  w.pages = {zeros(0, 11), zeros(1, 11), zeros(2, 11), zeros(4, 11), zeros(5, 11), zeros(6, 11), zeros(7, 11)};
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  EXPECT_EQ(store_.ResidentBytes(), before + 4096) << "slot 3 still holds data; slots 4-7 are all zeros";
  EXPECT_EQ(Get(5, 0), std::make_pair(uint64_t{11}, uint8_t{0}));
  EXPECT_EQ(Get(5, 3), std::make_pair(uint64_t{10}, uint8_t{7}));
  EXPECT_EQ(Get(5, 5), std::make_pair(uint64_t{11}, uint8_t{0}));
  w.pages = {Put(5, 5, 10, share)};  // older than the zeros: superseded
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  EXPECT_EQ(Get(5, 5), std::make_pair(uint64_t{11}, uint8_t{0}));
  w.pages = {zeros(3, 12)};
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  EXPECT_EQ(store_.ResidentBytes(), before);
  w.pages = {Put(5, 1, 13, share)};  // written again: the memory comes back
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  EXPECT_EQ(Get(5, 1), std::make_pair(uint64_t{13}, uint8_t{7}));
  EXPECT_EQ(Get(5, 2), std::make_pair(uint64_t{11}, uint8_t{0}));
  // Zeros claimed with another page's checksum: refused, nothing written.
  w.pages = {{{5, 8}, 14, Crc32c(share.data(), share.size()), {}}};
  EXPECT_EQ(Invoke(HandleWritePages, store_, w).status().code(), Code::kCorruption);
  EXPECT_EQ(Get(5, 8).first, 0u);
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

// A rebuild's placement the controller could not record is undone fragment
// by fragment: the region's other fragments, and their unfinished writes, stay.
TEST_F(HandlersTest, FreeFragmentsFreesJustThoseAndSkipsTheAbsent) {
  Bytes a = Page(1);
  proto::c2m::WritePages w{.region = 1, .epoch = 4, .writer = 7, .pages = {Put(0, 1, 10, a), Put(2, 1, 10, a)}};
  ASSERT_TRUE(Invoke(HandleWritePages, store_, w).status().ok());
  Reply rep = Invoke(HandleFreeFragments, store_, proto::ctl2m::FreeFragments{.region = 1, .fragments = {2, 9}});
  ASSERT_TRUE(rep.status().ok()) << rep.status().ToString();
  EXPECT_EQ(proto::ctl2m::FreeRegionReply::Decode(rep.body)->freed_bytes, 8u * 4096);
  EXPECT_EQ(store_.undo().Find(1, 2, 1), nullptr) << "its undo entries went with it";
  EXPECT_NE(store_.undo().Find(1, 0, 1), nullptr);
  EXPECT_EQ(Get(0, 1), std::make_pair(uint64_t{10}, uint8_t{1}));
  proto::c2m::ReadPages r{.region = 1, .epoch = 4, .pages = {{2, 1}}};
  EXPECT_EQ(Invoke(HandleReadPages, store_, r).status().code(), Code::kNotFound);
  rep = Invoke(HandleFreeFragments, store_, proto::ctl2m::FreeFragments{.region = 1, .fragments = {2}});
  EXPECT_EQ(proto::ctl2m::FreeRegionReply::Decode(rep.body)->freed_bytes, 0u) << "again: nothing to free";
  rep = Invoke(HandleFreeFragments, store_, proto::ctl2m::FreeFragments{.region = 1, .fragments = {0}});
  EXPECT_EQ(proto::ctl2m::FreeRegionReply::Decode(rep.body)->freed_bytes, 8u * 4096);
  EXPECT_EQ(store_.region_count(), 0u) << "a region with no fragment left is gone";
  EXPECT_EQ(store_.used_bytes(), 0u);
}

TEST_F(HandlersTest, MalformedBodiesGetErrorReplies) {
  for (auto* h : {HandleReadPages, HandleWritePages, HandleAllocFragments, HandleFreeRegion, HandleSetEpoch,
                  HandleFreeFragments}) {
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
