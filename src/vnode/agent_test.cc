#include "vnode/agent.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "vnode/agent_protocol.h"
#include "vnode/fake_queue.h"
#include "vnode/stress.h"

namespace tessera::vnode {
namespace {

constexpr uint64_t kPages = 2048 + 64, kCache = 96;

std::string Program() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "agent_test_program").string();
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tessera-agent-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/agent.sock";
    StartAgent();
  }
  void TearDown() override {
    agent_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartAgent(bool fresh_stores = true) {
    AgentOptions o{.socket_path = path_,
                   .pager = {.cache_bytes = kCache * stress::kPage, .counters = &counters_},
                   .pages = kPages,
                   .store = std::make_shared<FakeStore>(pool_, stress::kPage, 10'000, clones_),
                   .fork_counters = &fork_counters_};
    if (fresh_stores) {
      o.fresh_store = [this]() -> Result<std::unique_ptr<ImageStore>> {
        fresh_->fetch_add(1);
        return std::unique_ptr<ImageStore>(
            new FakeStore(std::make_shared<FakePool>(stress::kPage), stress::kPage, 10'000, clones_));
      };
    }
    auto a = Agent::Start(std::move(o));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    agent_ = std::move(*a);
  }
  // Runs the program to its end: its wait status.
  int RunProgram(const std::vector<std::string>& args) {
    pid_t pid = Spawn(args);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }
  pid_t Spawn(const std::vector<std::string>& args, int stdout_fd = -1) {
    std::vector<std::string> argv{Program(), path_};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t pid = fork();
    if (pid == 0) {
      if (stdout_fd >= 0) dup2(stdout_fd, 1);
      // A forked child of the program starts a watchdog thread: TSan can
      // follow it, but refuses unless told to (it ignores this otherwise).
      std::string tsan = std::getenv("TSAN_OPTIONS") != nullptr ? std::getenv("TSAN_OPTIONS") : "";
      setenv("TSAN_OPTIONS", (tsan + " die_after_fork=0").c_str(), 1);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    return pid;
  }
  // Starts a program that holds its pages; returns once it said "ready".
  pid_t SpawnHolding() {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_t pid = Spawn({"hold"}, fds[1]);
    close(fds[1]);
    char buf[8] = {};
    EXPECT_EQ(read(fds[0], buf, 6), 6);
    close(fds[0]);
    EXPECT_STREQ(buf, "ready\n");
    return pid;
  }

  std::string dir_, path_;
  std::shared_ptr<FakePool> pool_ = std::make_shared<FakePool>(stress::kPage);
  std::shared_ptr<std::atomic<int>> clones_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> fresh_ = std::make_shared<std::atomic<int>>(0);
  PagerCounters counters_, fork_counters_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentTest, ServesAProgramFromOutsideWithEveryByteChecked) {
  for (int seed : {1, 2}) {
    int status = RunProgram({"stress", std::to_string(seed)});
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  EXPECT_EQ(agent_->sessions(), 2u);
  PagerStats s = Snapshot(counters_, stress::kPage);
  EXPECT_LE(s.peak_used_bytes, kCache * stress::kPage);
  EXPECT_GT(s.evictions, kPages);
  EXPECT_GT(s.pages_written, 0u);
  EXPECT_GT(s.remote_faults, 0u);
  EXPECT_GT(s.rescues, 0u);
}

TEST_F(AgentTest, ForkedChildrenSeeTheParentsMemoryAndNotEachOthersWrites) {
  // The program evicts nearly all of its pages, then forks: with fork()
  // (whose child joins, evicts, and forks a grandchild), with _Fork() (which
  // runs no atfork handler: no join), and once to exec at once. Each process
  // checks every byte (agent_test_program).
  int status = RunProgram({"fork"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->forks(), 4u);
  PagerStats s = Snapshot(counters_, stress::kPage);
  EXPECT_GT(s.evictions, kPages) << "the children's pages came from the pool, not only from the parent's cache";
  // The fork() child and its grandchild write far more than a cache of pages:
  // they needed copies. The _Fork child only read (it has no cache limit) and
  // the parent wrote nothing while it lived: it read the parent's pages.
  EXPECT_EQ(clones_->load(), 2);
  for (int i = 0; i < 1000 && agent_->live_forks() > 0; ++i) usleep(10'000);
  EXPECT_EQ(agent_->live_forks(), 0u) << "a child's pager ends when its memory does";
}

TEST_F(AgentTest, PagesZeroedBeforeAForkAreZerosToTheChild) {
  // The pool holds every page with other content; the program zeroes them
  // all, so pages are staged (and found to be zeros) as it forks.
  int status = RunProgram({"zerofork"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->forks(), 5u);
}

TEST_F(AgentTest, AChildThatExecsCostsNoCopyEvenIfItReadsFirst) {
  int status = RunProgram({"forkexec"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->forks(), 5u);
  EXPECT_EQ(clones_->load(), 0);
}

TEST_F(AgentTest, AChildsPagerEndsWhenItsSocketHangsUpInsteadOfSpinning) {
  // Each child joins on a socket of its own, which its exec closes: the
  // hang-up keeps the pager's descriptor ready. The pager must find out at
  // once that the memory went with it, not loop until its next probe.
  int status = RunProgram({"forkexec"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  for (int i = 0; i < 1000 && agent_->live_forks() > 0; ++i) usleep(10'000);
  ASSERT_EQ(agent_->live_forks(), 0u);
  EXPECT_LE(fork_counters_.quiet_wakes.load(), 5u * 4) << "a few quiet wakes per child at most";
}

TEST_F(AgentTest, ProgramsExecdByItsChildrenAreServedFromPagesOfTheirOwn) {
  // Three children exec a program that stresses the whole range under the
  // cache limit (so it evicts) while their parent rewrites its own pages:
  // each process checks every byte it wrote.
  int status = RunProgram({"spawn", "3", "0"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->sessions(), 1u) << "the program's own pager served one image";
  EXPECT_EQ(agent_->other_images(), 3u);
  EXPECT_EQ(agent_->declined(), 0u);
  EXPECT_EQ(fresh_->load(), 3) << "each evicted into a store of its own";
  PagerStats s = Snapshot(fork_counters_, stress::kPage);
  EXPECT_GT(s.evictions, 3 * kPages);
  EXPECT_LE(s.peak_used_bytes, kCache * stress::kPage);
  for (int i = 0; i < 1000 && agent_->live_other_images() > 0; ++i) usleep(10'000);
  EXPECT_EQ(agent_->live_other_images(), 0u) << "their pagers end with them";
}

TEST_F(AgentTest, WithoutFreshStoresOtherProgramsKeepTheirMemoryLocal) {
  agent_.reset();
  StartAgent(/*fresh_stores=*/false);
  int status = RunProgram({"spawn", "2", "4"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->other_images(), 0u);
  EXPECT_EQ(agent_->declined(), 2u);
  EXPECT_EQ(agent_->sessions(), 1u);
}

TEST_F(AgentTest, AChildForkedBeforeAnExecKeepsItsPagesWhileTheNewImageWrites) {
  // The new image writes the same region its predecessor's child still reads
  // from: the child's copy must be made before those writes land.
  int status = RunProgram({"execkeep"});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->sessions(), 2u);
  EXPECT_EQ(agent_->forks(), 1u);
  EXPECT_EQ(clones_->load(), 1);
}

TEST_F(AgentTest, AChildWhoseParentLeavesTheMomentItForksIsServed) {
  // A daemon's fork: the parent exits (or execs) as soon as fork returns,
  // with pages of its still staged for the pool. Each child of the chain
  // checks every page; the last says "ok". A child that could not be served
  // is stopped by its watchdog and says nothing.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = Spawn({"orphans", "8"}, fds[1]);
  close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(out, "ok\n");
  EXPECT_EQ(agent_->forks(), 8u);
}

TEST_F(AgentTest, ABadHelloIsRefusedAndTheNextProgramIsServed) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path_.c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto config = RecvAgentMessage(fd);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->op, AgentOp::kConfig);
  EXPECT_EQ(config->a, kPages);
  // A hello without a userfaultfd, describing areas of the wrong size.
  ASSERT_TRUE(SendAgentMessage(fd, {.op = AgentOp::kHello, .a = 1 << 20, .b = 4096, .c = 2 << 20, .d = 4096}).ok());
  auto answer = RecvAgentMessage(fd);
  EXPECT_EQ(answer.status().message(), "closed");
  close(fd);
  // A forked child's join naming no child served here.
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_TRUE(RecvAgentMessage(fd).ok());
  ASSERT_TRUE(SendAgentMessage(fd, {.op = AgentOp::kForkHello, .a = 12345}).ok());
  EXPECT_EQ(RecvAgentMessage(fd).status().message(), "closed");
  close(fd);
  int status = RunProgram({"stress", "3"});
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_F(AgentTest, AKilledProgramsPagerFinishesAndTheNextImageIsServed) {
  pid_t pid = SpawnHolding();
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  status = RunProgram({"stress", "4"});
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(agent_->sessions(), 2u);
}

TEST_F(AgentTest, AProgramWhoseAgentGoesAwayIsStoppedNotLeftReadingZeros) {
  pid_t pid = SpawnHolding();
  agent_.reset();
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

}  // namespace
}  // namespace tessera::vnode
