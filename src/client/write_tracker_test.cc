// The write-hole bookkeeping of one client handle: the watermark never passes
// a write that is not over, and a page has one write in flight at a time.
#include "client/write_tracker.h"

#include <gtest/gtest.h>

namespace tessera::client {
namespace {

TEST(WriteTrackerTest, TheWatermarkStaysBelowEveryUnfinishedWrite) {
  WriteTracker t(42);
  EXPECT_EQ(t.writer(), 42u);
  EXPECT_EQ(t.done_below(), 1u) << "nothing written: nothing to complete";
  t.Reserve(10);
  t.Reserve(20);
  t.Reserve(30);
  EXPECT_EQ(t.done_below(), 10u);
  t.Release(2, 20, false);  // finished out of order
  EXPECT_EQ(t.done_below(), 10u);
  t.Release(1, 10, false);
  EXPECT_EQ(t.done_below(), 30u);
  t.Release(3, 30, false);
  EXPECT_EQ(t.done_below(), 31u) << "everything up to the newest is complete";
}

TEST(WriteTrackerTest, OneWritePerPageAndEveryReleaseIsSeen) {
  WriteTracker t(1);
  EXPECT_FALSE(t.TakeWroteSince());
  t.Reserve(5);
  EXPECT_TRUE(t.TakeWroteSince());
  EXPECT_FALSE(t.TakeWroteSince());
  EXPECT_TRUE(t.TryTake(7));
  EXPECT_FALSE(t.TryTake(7)) << "a second write of page 7 must wait";
  EXPECT_TRUE(t.TryTake(8));
  uint64_t gen = t.generation();
  t.Release(7, 5, true);
  EXPECT_GT(t.generation(), gen) << "a waiter polling the generation sees it";
  EXPECT_TRUE(t.TryTake(7));
}

}  // namespace
}  // namespace tessera::client
