#include "vnode/lazy_clone.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "vnode/fake_queue.h"
#include "vnode/stress.h"

namespace tessera::vnode {
namespace {

using stress::kPage;
constexpr size_t kKeep = 2;

// A parent image with one child forked from it. The child's beacon is a page
// of this process registered with a userfaultfd of its own, so the child
// counts as alive until the test unmaps it.
class LazyCloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto uffd = Uffd::Open({}, {});
    ASSERT_TRUE(uffd.ok()) << uffd.status().ToString();
    uffd_.emplace(std::move(*uffd));
    beacon_ = static_cast<uint8_t*>(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(beacon_, MAP_FAILED);
    ASSERT_TRUE(uffd_->RegisterMissing(beacon_, kPage).ok());
    Fill(parent_pool_, 0, 'A');
    Fill(parent_pool_, 1, 'A');
    child_ = std::make_shared<LazyClone>(parent_, UniqueFd(dup(uffd_->fd())), beacon_, kPage, kKeep);
    guard_->Add(child_);
    parent_queue_ = GuardedQueue(parent_->NewQueue(), guard_);
    child_queue_ = child_->NewQueue();
  }
  void TearDown() override {
    child_queue_.reset();
    if (beacon_ != nullptr) munmap(beacon_, kPage);
  }
  static void Fill(const std::shared_ptr<FakePool>& pool, uint64_t page, char c) {
    std::vector<char> buf(kPage, c);
    pool->Write(page, buf.data());
  }
  static char Byte(const std::shared_ptr<FakePool>& pool, uint64_t page) {
    std::vector<char> buf(kPage);
    pool->Read(page, buf.data());
    return buf[0];
  }
  // Runs one I/O of `page` on `q` to its completion: the first byte it saw.
  static char Io(IoQueue& q, PageIo::Kind kind, uint64_t page, char fill = 0) {
    std::vector<char> buf(kPage, fill);
    PageIo io{.kind = kind, .first_page = page, .buffer = buf.data(), .user_data = page};
    EXPECT_TRUE(q.Submit({&io, 1}).ok());
    std::vector<Completion> done;
    EXPECT_TRUE(q.Reap(&done, 1, 5000).ok());
    EXPECT_EQ(done.size(), 1u);
    EXPECT_TRUE(done.empty() || done[0].status.ok());
    return buf[0];
  }

  std::optional<Uffd> uffd_;
  uint8_t* beacon_ = nullptr;
  std::shared_ptr<std::atomic<int>> clones_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<FakePool> parent_pool_ = std::make_shared<FakePool>(kPage);
  std::shared_ptr<FakeStore> parent_ = std::make_shared<FakeStore>(parent_pool_, kPage, 10'000, clones_);
  std::shared_ptr<ForkGuard> guard_ = std::make_shared<ForkGuard>();
  std::shared_ptr<LazyClone> child_;
  std::unique_ptr<IoQueue> parent_queue_, child_queue_;
};

TEST_F(LazyCloneTest, TheChildReadsItsParentsPagesUntilTheParentWrites) {
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 0), 'A');
  EXPECT_EQ(Io(*parent_queue_, PageIo::Kind::kRead, 1), 'A');
  EXPECT_EQ(clones_->load(), 0) << "reads, the child's or the parent's, need no copy";
  EXPECT_TRUE(guard_->Lending()) << "the parent's pager hears that a write of its would cost a copy";
  Io(*parent_queue_, PageIo::Kind::kWrite, 0, 'B');
  EXPECT_EQ(clones_->load(), 1);
  EXPECT_FALSE(guard_->Lending());
  EXPECT_EQ(Byte(parent_pool_, 0), 'B');
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 0), 'A') << "the child reads its copy now";
  Io(*parent_queue_, PageIo::Kind::kWrite, 1, 'B');
  EXPECT_EQ(clones_->load(), 1) << "one copy, made before the parent's first write";
}

TEST_F(LazyCloneTest, TheParentsWriteWaitsForTheChildsReadsInFlight) {
  // A FakeQueue's read takes its bytes when reaped: if the parent's write
  // overtook it, the child would read 'B'.
  std::vector<char> buf(kPage);
  PageIo read{.kind = PageIo::Kind::kRead, .first_page = 0, .buffer = buf.data()};
  ASSERT_TRUE(child_queue_->Submit({&read, 1}).ok());
  std::atomic<bool> submitted{false};
  std::thread parent([&] {
    Io(*parent_queue_, PageIo::Kind::kWrite, 0, 'B');
    submitted.store(true);
  });
  usleep(50'000);  // room for a write that does not wait to land first
  EXPECT_FALSE(submitted.load()) << "the parent's write went ahead of the child's read";
  std::vector<Completion> done;
  ASSERT_TRUE(child_queue_->Reap(&done, 1, 5000).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(buf[0], 'A');
  parent.join();
  EXPECT_EQ(Byte(parent_pool_, 0), 'B');
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 0), 'A');
  EXPECT_EQ(clones_->load(), 1);
}

TEST_F(LazyCloneTest, TheChildsWritesAreKeptUntilThereAreTooMany) {
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'C');
  Io(*child_queue_, PageIo::Kind::kWrite, 2, 'C');
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'D');
  EXPECT_EQ(clones_->load(), 0) << kKeep << " pages are kept without a copy";
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 1), 'D');
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 0), 'A');
  EXPECT_TRUE(guard_->Lending());
  Io(*child_queue_, PageIo::Kind::kWrite, 3, 'C');
  EXPECT_EQ(clones_->load(), 1) << "a third page needs the copy";
  EXPECT_FALSE(guard_->Lending()) << "the parent's writes cost nothing more now";
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 1), 'D');
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 2), 'C');
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 3), 'C');
  EXPECT_EQ(Byte(parent_pool_, 1), 'A');
  EXPECT_EQ(Byte(parent_pool_, 2), 0);
}

TEST_F(LazyCloneTest, TheKeptPagesGoToTheCopyTheParentsWriteMakes) {
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'C');
  Io(*parent_queue_, PageIo::Kind::kWrite, 1, 'B');
  EXPECT_EQ(clones_->load(), 1);
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 1), 'C');
  EXPECT_EQ(Byte(parent_pool_, 1), 'B');
}

TEST_F(LazyCloneTest, AReadOfSeveralPagesBorrowsAndSeesTheKeptOnes) {
  // The pager prefetches runs of pages in one read. Page 1 is kept; the
  // parent's write makes the copy (taking the kept page with it) while the
  // run still flies: the run must still show the child's page 1.
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'C');
  std::vector<char> buf(3 * kPage, 0);
  PageIo run{.kind = PageIo::Kind::kRead, .first_page = 0, .page_count = 3, .buffer = buf.data(), .user_data = 7};
  ASSERT_TRUE(child_queue_->Submit({&run, 1}).ok());
  EXPECT_EQ(clones_->load(), 0) << "a read of several pages borrows the parent's too";
  std::thread parent([&] { Io(*parent_queue_, PageIo::Kind::kWrite, 0, 'B'); });
  usleep(50'000);  // the copy is made, the kept pages go into it, the write waits
  std::vector<Completion> done;
  while (done.empty()) ASSERT_TRUE(child_queue_->Reap(&done, 1, 5000).ok());
  parent.join();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].user_data, 7u);
  EXPECT_EQ(buf[0], 'A') << "the parent's page as it was at the fork";
  EXPECT_EQ(buf[kPage], 'C') << "the child's own write of page 1";
  EXPECT_EQ(buf[2 * kPage], 0);
  EXPECT_EQ(clones_->load(), 1);
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 1), 'C') << "and the copy has it";
}

TEST_F(LazyCloneTest, AGrandchildSeesTheChildsKeptPages) {
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'C');
  auto grandchild = child_->Clone();
  ASSERT_TRUE(grandchild.ok()) << grandchild.status().ToString();
  EXPECT_EQ(Io(*(*grandchild)->NewQueue(), PageIo::Kind::kRead, 1), 'C');
  EXPECT_EQ(Io(*(*grandchild)->NewQueue(), PageIo::Kind::kRead, 0), 'A');
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 1), 'C');
}

TEST_F(LazyCloneTest, AChildsReleaseNeedsNoCopy) {
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'C');
  PageIo release{.kind = PageIo::Kind::kZero, .first_page = 0, .page_count = 3, .user_data = 9};
  ASSERT_TRUE(child_queue_->Submit({&release, 1}).ok());
  std::vector<Completion> done;
  ASSERT_TRUE(child_queue_->Reap(&done, 1, 5000).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].user_data, 9u);
  EXPECT_EQ(clones_->load(), 0);
  EXPECT_EQ(Byte(parent_pool_, 0), 'A') << "the parent's pages are not the child's to release";
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 1), 'A') << "the kept write is dropped";
}

TEST_F(LazyCloneTest, AChildWhoseMemoryIsGoneIsNeverCopied) {
  EXPECT_EQ(Io(*child_queue_, PageIo::Kind::kRead, 0), 'A');
  Io(*child_queue_, PageIo::Kind::kWrite, 1, 'C');
  ASSERT_EQ(munmap(beacon_, kPage), 0);  // as exec or exit would
  beacon_ = nullptr;
  Io(*parent_queue_, PageIo::Kind::kWrite, 0, 'B');
  EXPECT_EQ(clones_->load(), 0);
  std::vector<char> buf(kPage);
  PageIo read{.kind = PageIo::Kind::kRead, .first_page = 0, .buffer = buf.data()};
  Status s = child_queue_->Submit({&read, 1});
  EXPECT_EQ(s.code(), Code::kCancelled) << "never read from pages the parent changed: " << s.ToString();
}

}  // namespace
}  // namespace tessera::vnode
