// The write-hole rules (write_rules.h) on a real FragmentStore with a fake
// clock, and the previous versions a ReadPages with kWithPrevious returns.
#include "memnode/write_rules.h"

#include <gtest/gtest.h>

#include "common/crc.h"
#include "memnode/handlers.h"

namespace tessera::memnode {
namespace {

using proto::c2m::WriteMode;
constexpr uint64_t kRegion = 1;
constexpr uint32_t kSlot = 256;

class WriteRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proto::ctl2m::FragmentSpec spec{0, 4, kSlot};
    ASSERT_TRUE(store_.Allocate(kRegion, 1, {&spec, 1}).ok());
  }
  WriteOutcome Write(uint64_t writer, WriteMode mode, uint32_t slot, uint64_t version) {
    data_.assign(kSlot, static_cast<uint8_t>(version));
    proto::c2m::WritePage p{{0, slot}, version, Crc32c(data_.data(), kSlot), data_};
    return ApplyWrite(store_.undo(), kRegion, writer, mode, p, *store_.Lookup(kRegion, 0, slot));
  }
  uint64_t Current(uint32_t slot) { return *store_.Lookup(kRegion, 0, slot)->version; }
  // The undo copy's version, 0 if none; checks its bytes are that version's.
  uint64_t Previous(uint32_t slot) {
    const UndoEntry* e = store_.undo().Find(kRegion, 0, slot);
    if (e == nullptr) return 0;
    if (e->prev.empty()) {  // zeros, not copied
      EXPECT_EQ(e->prev_crc, Crc32cOfZeros(kSlot));
      return e->prev_version;
    }
    EXPECT_EQ(e->prev_crc, Crc32c(e->prev.data(), e->prev.size()));
    EXPECT_EQ(e->prev[0], static_cast<uint8_t>(e->prev_version));
    return e->prev_version;
  }

  uint64_t now_ = 1'000'000'000;
  FragmentStore store_{1 << 20, UndoOptions{.max_bytes = 3 * kSlot, .orphan_ms = 100, .now_ns = [this] {
                                              return now_;
                                            }}};
  std::vector<uint8_t> data_;
};

TEST_F(WriteRulesTest, AWriteKeepsWhatItReplacedUntilItsWriterSaysDone) {
  ASSERT_EQ(Write(7, WriteMode::kWrite, 0, 10), WriteOutcome::kApplied);
  EXPECT_EQ(Previous(0), 0u) << "a never-written slot has nothing to keep but zeros";
  store_.undo().Commit(kRegion, 7, 11);
  EXPECT_EQ(store_.undo().Find(kRegion, 0, 0), nullptr);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 0, 20), WriteOutcome::kApplied);
  EXPECT_EQ(Previous(0), 10u);
  store_.undo().Commit(kRegion, 8, 100);  // another writer's watermark
  store_.undo().Commit(kRegion, 7, 20);   // not past 20
  EXPECT_EQ(Previous(0), 10u);
  store_.undo().Commit(kRegion, 7, 21);
  EXPECT_EQ(store_.undo().Find(kRegion, 0, 0), nullptr);
  EXPECT_EQ(store_.undo().bytes(), 0u);
}

TEST_F(WriteRulesTest, AWritersNextWriteOfASlotCompletesItsLastOne) {
  ASSERT_EQ(Write(7, WriteMode::kWrite, 1, 10), WriteOutcome::kApplied);
  store_.undo().Commit(kRegion, 7, 11);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 1, 20), WriteOutcome::kApplied);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 1, 30), WriteOutcome::kApplied);
  EXPECT_EQ(Previous(1), 20u);
  EXPECT_EQ(Current(1), 30u);
  EXPECT_EQ(Write(7, WriteMode::kWrite, 1, 25), WriteOutcome::kSuperseded);
}

TEST_F(WriteRulesTest, AnotherWritersUnfinishedWriteIsAConflictUntilResolved) {
  ASSERT_EQ(Write(7, WriteMode::kWrite, 2, 10), WriteOutcome::kApplied);
  store_.undo().Commit(kRegion, 7, 11);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 2, 20), WriteOutcome::kApplied);  // then writer 7 dies
  EXPECT_EQ(Write(8, WriteMode::kWrite, 2, 30), WriteOutcome::kConflict);
  EXPECT_EQ(Current(2), 20u) << "a conflict changes nothing";
  // Going back to 10 over writer 7's write must wait for it to be orphaned...
  EXPECT_EQ(Write(8, WriteMode::kResolve, 2, 10), WriteOutcome::kConflict);
  now_ += 100'000'000;
  ASSERT_EQ(Write(8, WriteMode::kResolve, 2, 10), WriteOutcome::kApplied);
  EXPECT_EQ(Current(2), 10u);
  EXPECT_EQ(Previous(2), 0u) << "settled";
  EXPECT_EQ(Write(8, WriteMode::kWrite, 2, 30), WriteOutcome::kApplied);
  EXPECT_EQ(Previous(2), 10u);
}

TEST_F(WriteRulesTest, ResolvingForwardNeedsNoWaitAndTheResolverMayUndoItsOwnWrite) {
  ASSERT_EQ(Write(7, WriteMode::kWrite, 3, 10), WriteOutcome::kApplied);
  ASSERT_EQ(Write(8, WriteMode::kResolve, 3, 10), WriteOutcome::kApplied) << "completes writer 7's write";
  EXPECT_EQ(store_.undo().Find(kRegion, 0, 3), nullptr);
  ASSERT_EQ(Write(8, WriteMode::kWrite, 3, 20), WriteOutcome::kApplied);
  ASSERT_EQ(Write(8, WriteMode::kResolve, 3, 10), WriteOutcome::kApplied) << "its own write, at once";
  EXPECT_EQ(Current(3), 10u);
}

TEST_F(WriteRulesTest, CommitInstallsNewerAndSettles) {
  ASSERT_EQ(Write(7, WriteMode::kWrite, 0, 10), WriteOutcome::kApplied);
  EXPECT_EQ(Write(1, WriteMode::kCommit, 0, 9), WriteOutcome::kSuperseded);
  EXPECT_NE(store_.undo().Find(kRegion, 0, 0), nullptr) << "an older rebuild leaves the write unfinished";
  ASSERT_EQ(Write(1, WriteMode::kCommit, 0, 12), WriteOutcome::kApplied);
  EXPECT_EQ(store_.undo().Find(kRegion, 0, 0), nullptr);
}

TEST_F(WriteRulesTest, ZerosReplacedCostTheLogNoBytes) {
  for (uint32_t s = 0; s < 4; ++s) ASSERT_EQ(Write(7, WriteMode::kWrite, s, 10), WriteOutcome::kApplied);
  EXPECT_EQ(store_.undo().entries(), 4u) << "four unfinished writes over never-written slots";
  EXPECT_EQ(store_.undo().bytes(), 0u);
  EXPECT_EQ(store_.undo().full_misses(), 0u);
  EXPECT_EQ(Previous(3), 0u);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 3, 11), WriteOutcome::kApplied);
  EXPECT_EQ(Previous(3), 10u) << "the writer's next write keeps its last one's bytes";
  EXPECT_EQ(store_.undo().bytes(), kSlot);
  store_.undo().Commit(kRegion, 7, 12);
  EXPECT_EQ(store_.undo().bytes(), 0u);
}

TEST_F(WriteRulesTest, AFullLogStillTakesWritesAndCountsThem) {
  for (uint32_t s = 0; s < 4; ++s) ASSERT_EQ(Write(7, WriteMode::kWrite, s, 10), WriteOutcome::kApplied);
  store_.undo().Commit(kRegion, 7, 11);
  for (uint32_t s = 0; s < 4; ++s) ASSERT_EQ(Write(7, WriteMode::kWrite, s, 20), WriteOutcome::kApplied);
  EXPECT_EQ(store_.undo().entries(), 3u);
  EXPECT_EQ(store_.undo().full_misses(), 1u);
  EXPECT_EQ(Current(3), 20u);
  store_.FreeRegion(kRegion);
  EXPECT_EQ(store_.undo().bytes(), 0u);
}

TEST_F(WriteRulesTest, ReadPagesWithPreviousReturnsTheUndoCopy) {
  ASSERT_EQ(Write(7, WriteMode::kWrite, 0, 10), WriteOutcome::kApplied);
  store_.undo().Commit(kRegion, 7, 11);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 0, 20), WriteOutcome::kApplied);
  ASSERT_EQ(Write(7, WriteMode::kWrite, 2, 30), WriteOutcome::kApplied);  // over zeros, unfinished
  proto::c2m::ReadPages r{.region = kRegion, .epoch = 1, .flags = proto::c2m::kWithPrevious,
                          .pages = {{0, 0}, {0, 1}, {0, 2}}};
  proto::Bytes body, out;
  proto::Writer w(&body);
  r.Encode(w);
  HandleReadPages(store_, {.opcode = 1, .request_id = 1}, body, &out);
  auto got = proto::c2m::ReadPagesReply::Decode(proto::ByteSpan(out).subspan(proto::kHeaderSize));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->previous.size(), 3u);
  EXPECT_EQ(got->pages[0].version, 20u);
  EXPECT_EQ(got->previous[0].version, 10u);
  EXPECT_EQ(got->previous[0].data.size(), kSlot);
  EXPECT_EQ(got->previous[0].data[0], 10);
  EXPECT_EQ(got->previous[1].version, 0u);
  EXPECT_TRUE(got->previous[1].data.empty()) << "no write, no previous";
  EXPECT_EQ(got->previous[2].version, 0u);
  ASSERT_EQ(got->previous[2].data.size(), kSlot) << "the zeros it replaced, in full";
  EXPECT_EQ(got->previous[2].crc, Crc32cOfZeros(kSlot));
  EXPECT_EQ(Crc32c(got->previous[2].data.data(), kSlot), Crc32cOfZeros(kSlot));
}

}  // namespace
}  // namespace tessera::memnode
