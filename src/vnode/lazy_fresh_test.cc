#include "vnode/lazy_fresh.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

#include "vnode/fake_queue.h"
#include "vnode/stress.h"

namespace tessera::vnode {
namespace {

using stress::kPage;

class LazyFreshTest : public ::testing::Test {
 protected:
  // A maker that counts its calls and fails while `fail_` is set.
  LazyFresh::Maker Maker() {
    return [this]() -> Result<std::unique_ptr<ImageStore>> {
      ++made_;
      if (fail_) return Unavailable("the controller is away");
      return std::unique_ptr<ImageStore>(new FakeStore(pool_, kPage, latency_ns_, clones_));
    };
  }
  // Writes one page through `q` and reaps its completion.
  Status WriteOne(IoQueue& q, uint64_t page, uint8_t fill) {
    std::vector<uint8_t> buf(kPage, fill);
    PageIo io{.kind = PageIo::Kind::kWrite, .first_page = page, .buffer = buf.data(), .user_data = page};
    TS_RETURN_IF_ERROR(q.Submit({&io, 1}));
    std::vector<Completion> done;
    while (done.empty()) TS_RETURN_IF_ERROR(q.Reap(&done, 1, 1000).status());
    return done[0].status;
  }

  std::shared_ptr<FakePool> pool_ = std::make_shared<FakePool>(kPage);
  std::shared_ptr<std::atomic<int>> clones_ = std::make_shared<std::atomic<int>>(0);
  int made_ = 0;
  bool fail_ = false;
  uint64_t latency_ns_ = 0;  // of the made store's I/O
};

TEST_F(LazyFreshTest, NothingIsMadeUntilTheFirstIo) {
  LazyFresh fresh(Maker());
  std::unique_ptr<IoQueue> q = fresh.NewQueue();
  ASSERT_TRUE(q->Flush().ok());
  EXPECT_EQ(q->outstanding(), 0u);
  std::vector<Completion> done;
  Result<size_t> none = q->Reap(&done, 0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(q->Reap(&done, 1, 10).status().code(), Code::kTimedOut) << "nothing can complete";
  auto copy = fresh.Clone();
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(made_, 0) << "a copy of nothing written is another promise";
  EXPECT_EQ(clones_->load(), 0);
  EXPECT_FALSE(fresh.made());
}

TEST_F(LazyFreshTest, TheFirstIoMakesTheStoreOnceForEveryQueue) {
  LazyFresh fresh(Maker());
  std::unique_ptr<IoQueue> a = fresh.NewQueue(), b = fresh.NewQueue();
  ASSERT_TRUE(WriteOne(*a, 3, 0xab).ok());
  ASSERT_TRUE(WriteOne(*b, 4, 0xcd).ok());
  EXPECT_EQ(made_, 1);
  EXPECT_TRUE(fresh.made());
  std::vector<uint8_t> got(kPage);
  pool_->Read(3, got.data());
  EXPECT_EQ(got[0], 0xab);
  pool_->Read(4, got.data());
  EXPECT_EQ(got[kPage - 1], 0xcd);
  auto copy = fresh.Clone();
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(clones_->load(), 1) << "once made, a copy is the made store's";
}

TEST_F(LazyFreshTest, AStoreThatCannotBeMadeFailsThatIoAndIsTriedAgain) {
  LazyFresh fresh(Maker());
  std::unique_ptr<IoQueue> q = fresh.NewQueue();
  fail_ = true;
  EXPECT_EQ(WriteOne(*q, 1, 1).code(), Code::kUnavailable);
  EXPECT_FALSE(fresh.made());
  fail_ = false;
  ASSERT_TRUE(WriteOne(*q, 1, 2).ok());
  EXPECT_EQ(made_, 2);
  EXPECT_TRUE(fresh.made());
}

TEST_F(LazyFreshTest, AQueueWokenBeforeTheStoreExistsStaysWokenAfter) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LazyFresh fresh(Maker());
  std::unique_ptr<IoQueue> q = fresh.NewQueue();
  ASSERT_TRUE(q->WakeOnReadable(fds[0]).ok());
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  std::vector<Completion> done;
  Result<size_t> n = q->Reap(&done, 1, 10'000);
  ASSERT_TRUE(n.ok()) << "news on the descriptor ends the wait early";
  EXPECT_EQ(*n, 0u);
  // A write that takes a minute makes the store; the queue it gets must be
  // woken by the same descriptor, which still has news.
  latency_ns_ = 60'000'000'000ull;
  std::vector<uint8_t> buf(kPage, 3);
  PageIo io{.kind = PageIo::Kind::kWrite, .first_page = 2, .buffer = buf.data()};
  ASSERT_TRUE(q->Submit({&io, 1}).ok());
  EXPECT_EQ(q->outstanding(), 1u);
  n = q->Reap(&done, 1, 10'000);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 0u);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace tessera::vnode
