// Acknowledged means kept, whatever the clocks say: clients in processes of
// their own (tests/page_client.cc), some under faketime with their clocks an
// hour behind, an hour ahead, half a second apart, or stepped back between two
// runs, write and read the same pages one operation at a time. Every
// operation is recorded; for each page, every read must return the last
// acknowledged write (or a write that failed after it, which may have
// landed), and no write may be acknowledged that a later read does not see.
// A version from the far future, sent through the protocol itself, is refused
// and changes nothing.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "cmd/local_cluster.h"
#include "common/crc.h"
#include "common/page_pattern.h"
#include "net/rpc.h"
#include "net/transport.h"
#include "proto/c2m.h"
#include "tessera/client.h"

namespace tessera {
namespace {

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

// A page_client process, its clock offset by `faketime` (libfaketime's
// syntax: "-1h", "+0.5"; empty: the real clock).
class PageClient {
 public:
  PageClient(const std::string& controller, const std::string& faketime) {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      if (!faketime.empty()) {
        // Under ASan the sanitizer's runtime must come first, which a
        // preloaded library breaks unless told not to check.
        const char* asan = std::getenv("ASAN_OPTIONS");
        setenv("ASAN_OPTIONS", (std::string(asan ? asan : "") + ":verify_asan_link_order=0").c_str(), 1);
        setenv("LD_PRELOAD", kFaketime, 1);
        setenv("FAKETIME", faketime.c_str(), 1);
        setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
      }
      execl(TESSERA_PAGE_CLIENT, TESSERA_PAGE_CLIENT, controller.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  ~PageClient() {
    Ask("quit");
    std::fclose(to_);
    std::fclose(from_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  // One command, its one-line answer ("" if the process is gone).
  std::string Ask(const std::string& command) {
    std::fprintf(to_, "%s\n", command.c_str());
    std::fflush(to_);
    char line[4096];
    if (std::fgets(line, sizeof line, from_) == nullptr) return "";
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

// The recorded history of one test and the rule every read must keep.
class History {
 public:
  // A write's answer; returns whether it was acknowledged.
  bool Wrote(const std::string& who, uint64_t page, uint64_t value, const std::string& answer) {
    Page& p = pages_[page];
    log_ += who + " write " + std::to_string(page) + " " + std::to_string(value) + " -> " + answer + "\n";
    if (answer == "ok") {
      p.acked = value;
      p.maybe.clear();
      ++acked_;
      return true;
    }
    p.maybe.insert(value);  // failed: it may or may not have landed
    return false;
  }
  // A read's answer; false (and the history, for the failure message) if it
  // breaks the rule.
  void Read(const std::string& who, uint64_t page, const std::string& answer) {
    const Page& p = pages_[page];
    log_ += who + " read " + std::to_string(page) + " -> " + answer + "\n";
    const std::string want = p.acked == 0 ? "ok zero" : "ok " + std::to_string(p.acked);
    bool fine = answer == want;
    for (uint64_t v : p.maybe) fine = fine || answer == "ok " + std::to_string(v);
    EXPECT_TRUE(fine) << who << " read page " << page << ": " << answer << ", last acknowledged write: " << want
                      << "\nhistory:\n"
                      << log_;
    ++reads_;
  }
  int acked() const { return acked_; }
  int reads() const { return reads_; }

 private:
  struct Page {
    uint64_t acked = 0;  // value of the last acknowledged write; 0: none
    std::set<uint64_t> maybe;
  };
  std::map<uint64_t, Page> pages_;
  std::string log_;
  int acked_ = 0, reads_ = 0;
};

class ClockTest : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    const char* bin = std::getenv("TESSERA_BIN");
    ASSERT_NE(bin, nullptr) << "run through ctest, which sets TESSERA_BIN";
    ASSERT_EQ(access(kFaketime, R_OK), 0) << kFaketime << " is missing: scripts/setup.sh installs faketime";
    auto c = cmd::LocalCluster::Start({.memnodes = 6, .capacity_bytes = 64ull << 20, .heartbeat_ms = 100,
                                       .binary = bin});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    name_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (char& c : name_) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  }
  std::unique_ptr<PageClient> Start(const std::string& faketime, bool create = false) {
    auto c = std::make_unique<PageClient>(cluster_->controller_address(), faketime);
    std::string answer = c->Ask("open " + name_ + (create ? std::string(" 1M ") + GetParam() : ""));
    EXPECT_EQ(answer, "ok");
    return c;
  }
  // `who` writes `value` to page `page` and must be acknowledged.
  void Write(PageClient& c, const std::string& who, uint64_t page, uint64_t value) {
    EXPECT_TRUE(history_.Wrote(who, page, value, c.Ask("write " + std::to_string(page) + " " + std::to_string(value))))
        << who << "'s write of page " << page << " was not acknowledged";
  }
  void Read(PageClient& c, const std::string& who, uint64_t page) {
    history_.Read(who, page, c.Ask("read " + std::to_string(page)));
  }

  static cmd::LocalCluster* cluster_;
  std::string name_;
  History history_;
};

cmd::LocalCluster* ClockTest::cluster_ = nullptr;

TEST_P(ClockTest, AWriterAnHourBehindIsSeenAndSeesTheOther) {
  auto normal = Start("", /*create=*/true);
  auto behind = Start("-1h");
  for (uint64_t page = 0; page < 20; ++page) {
    Write(*normal, "normal", page, 100 + page);
    Write(*behind, "behind", page, 200 + page);
    Read(*normal, "normal", page);
    Read(*behind, "behind", page);
    Write(*normal, "normal", page, 300 + page);
    Read(*behind, "behind", page);
  }
  for (uint64_t page = 20; page < 40; ++page) {  // pages only the one behind writes
    Write(*behind, "behind", page, 400 + page);
    Read(*normal, "normal", page);
  }
  EXPECT_EQ(history_.acked(), 80);
}

TEST_P(ClockTest, AWriterAnHourAheadIsRefusedAndTheOthersWritesStand) {
  auto normal = Start("", /*create=*/true);
  auto ahead = Start("+1h");
  for (uint64_t page = 0; page < 20; ++page) {
    Write(*normal, "normal", page, 100 + page);
    std::string answer = ahead->Ask("write " + std::to_string(page) + " " + std::to_string(200 + page));
    EXPECT_FALSE(history_.Wrote("ahead", page, 200 + page, answer));
    EXPECT_NE(answer.find("clock skew"), std::string::npos) << answer;
    EXPECT_NE(answer.find("from the future"), std::string::npos) << answer;
    Read(*normal, "normal", page);
    Read(*ahead, "ahead", page);
    EXPECT_EQ(ahead->Ask("read " + std::to_string(page)), "ok " + std::to_string(100 + page))
        << "the refused write changed nothing";
    Write(*normal, "normal", page, 300 + page);
    Read(*ahead, "ahead", page);
  }
  EXPECT_EQ(history_.acked(), 40);
}

TEST_P(ClockTest, WritersHalfASecondApartAreOrderedAsTheyHappen) {
  auto normal = Start("", /*create=*/true);
  auto behind = Start("-0.5");
  auto ahead = Start("+0.5");
  for (uint64_t page = 0; page < 20; ++page) {
    Write(*ahead, "ahead", page, 100 + page);
    Write(*normal, "normal", page, 200 + page);
    Read(*ahead, "ahead", page);
    Write(*behind, "behind", page, 300 + page);
    Read(*normal, "normal", page);
    Read(*ahead, "ahead", page);
    Write(*ahead, "ahead", page, 400 + page);
    Read(*behind, "behind", page);
  }
  EXPECT_EQ(history_.acked(), 80);
}

TEST_P(ClockTest, AClientWhoseClockSteppedBackBetweenTwoOpensIsSeen) {
  {
    auto before = Start("", /*create=*/true);
    for (uint64_t page = 0; page < 20; ++page) Write(*before, "before", page, 100 + page);
  }
  // The host's clock was set back 10 s (an NTP correction), and the region
  // opened again by a new process.
  auto after = Start("-10");
  for (uint64_t page = 0; page < 20; ++page) {
    Write(*after, "after", page, 200 + page);
    Read(*after, "after", page);
  }
  auto reader = Start("");
  for (uint64_t page = 0; page < 20; ++page) Read(*reader, "reader", page);
  EXPECT_EQ(history_.acked(), 40);
}

// A writer sending version 2^64-1 straight to the memory nodes would pin the
// page for good: it is refused with an error naming both clocks.
TEST_P(ClockTest, AVersionFromTheFarFutureIsRefusedAndChangesNothing) {
  auto client = Client::Connect({.controller = cluster_->controller_address()});
  ASSERT_TRUE(client.ok());
  auto region = (*client)->CreateRegion(name_, 1 << 20, {.redundancy = GetParam()});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  std::vector<uint8_t> page(4096);
  FillPattern(page.data(), page.size(), 0, 7);
  ASSERT_TRUE((*region)->Write(0, 1, page.data()).ok());
  auto info = (*client)->GetClusterStatus();
  ASSERT_TRUE(info.ok());
  auto transport = net::NewTcpClientTransport({});
  ASSERT_TRUE(transport.ok());
  int refused = 0;
  for (const auto& node : info->nodes) {
    auto conn = (*transport)->Connect(node.address);
    ASSERT_TRUE(conn.ok());
    // Fragment 0 slot 0 of the region wherever it is: a node that holds no
    // such fragment says so instead, which is fine too (nothing changes).
    std::vector<uint8_t> share(4096 / (std::string(GetParam()) == "none" ? 1 : 4), 0xEE);
    proto::c2m::WritePages w{.region = (*region)->id(), .epoch = 1ull << 40, .writer = 0xBAD};
    for (uint32_t f = 0; f < 6; ++f) {
      w.pages = {{{f, 0}, ~0ull, Crc32c(share.data(), share.size()), proto::ByteSpan(share.data(), share.size())}};
      auto reply = net::Call(**transport, **conn, w, 5000);
      ASSERT_FALSE(reply.ok()) << "version 2^64-1 was taken by " << node.address;
      if (reply.status().code() == Code::kClockSkew) ++refused;
      EXPECT_TRUE(reply.status().code() == Code::kClockSkew || reply.status().code() == Code::kNotFound)
          << reply.status().ToString();
    }
  }
  EXPECT_GE(refused, 1);
  std::vector<uint8_t> back(4096);
  ASSERT_TRUE((*region)->Read(0, 1, back.data()).ok());
  EXPECT_EQ(back, page);
  FillPattern(page.data(), page.size(), 0, 8);
  ASSERT_TRUE((*region)->Write(0, 1, page.data()).ok()) << "the page is not pinned";
  ASSERT_TRUE((*region)->Read(0, 1, back.data()).ok());
  EXPECT_EQ(back, page);
}

INSTANTIATE_TEST_SUITE_P(Redundancy, ClockTest, ::testing::Values("none", "ec:4+2"),
                         [](const auto& info) { return std::string(info.param) == "none" ? "none" : "ec42"; });

}  // namespace
}  // namespace tessera
