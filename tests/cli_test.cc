// The `tessera` command line as an operator uses it: `up` in the background,
// then status and region commands that find it without flags, then Ctrl-C.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"

namespace tessera {
namespace {

struct Output {
  int exit_code;
  std::string text;  // stdout and stderr
};

Output Tessera(const std::string& args) {
  std::string cmd = std::string(std::getenv("TESSERA_BIN")) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Output out{-1, ""};
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.text.append(buf.data(), n);
  int st = pclose(p);
  out.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("TESSERA_BIN"), nullptr) << "run through ctest, which sets TESSERA_BIN";
    char tmpl[] = "/tmp/tessera-cli-XXXXXX";
    dir_ = mkdtemp(tmpl);
    setenv("TESSERA_RUN_FILE", (dir_ + "/up.json").c_str(), 1);
    unsetenv("TESSERA_CONTROLLER");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CliTest, EverySubcommandHasHelp) {
  for (const char* sub : {"", "controller", "memnode", "up", "status", "region", "region create", "region ls",
                          "region rm", "bench", "demo"}) {
    Output o = Tessera(std::string(sub) + " --help");
    EXPECT_EQ(o.exit_code, 0) << sub;
    EXPECT_NE(o.text.find("Usage"), std::string::npos) << sub << ": " << o.text;
  }
}

TEST_F(CliTest, BadInputGetsAClearError) {
  Output o = Tessera("region create x 12Q --controller 127.0.0.1:1");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.text.find("12Q"), std::string::npos) << o.text;
  o = Tessera("status --controller 127.0.0.1:1");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.text.find("tessera up"), std::string::npos) << "says how to start a cluster: " << o.text;
  // Nothing listens at any of them: said at once, not after a wait for a leader.
  o = Tessera("status --controller 127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.text.find("no controller of 127.0.0.1:1,127.0.0.1:2 can be reached"), std::string::npos) << o.text;
  o = Tessera("status --controller 127.0.0.1:1,nonsense");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.text.find("controller list"), std::string::npos) << o.text;
}

// A daemon's flags from a TOML file: the file sets them, the command line
// wins over it, --print-config writes a file that reads back the same, and a
// mistake in the file is named with its line.
TEST_F(CliTest, ADaemonTakesItsFlagsFromATomlFile) {
  const std::string file = dir_ + "/controller.toml";
  std::ofstream(file) << "listen = \"127.0.0.1:7999\"\n"
                         "etcd = [\"10.0.0.1:2379\", \"10.0.0.2:2379\"]\n"
                         "leader_ttl = 5\n"
                         "data-dir = \"/srv/tessera\"\n";
  Output o = Tessera("controller --config " + file + " --leader-ttl 4 --print-config");
  ASSERT_EQ(o.exit_code, 0) << o.text;
  EXPECT_NE(o.text.find("listen = '127.0.0.1:7999'"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("etcd = [ '10.0.0.1:2379', '10.0.0.2:2379' ]"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("data_dir = '/srv/tessera'"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("leader_ttl = 4"), std::string::npos) << "the command line wins: " << o.text;
  EXPECT_NE(o.text.find("member_ttl = 2"), std::string::npos) << "defaults are written too: " << o.text;

  const std::string printed = dir_ + "/printed.toml";
  std::ofstream(printed) << o.text;
  Output again = Tessera("controller --config " + printed + " --print-config");
  ASSERT_EQ(again.exit_code, 0) << again.text;
  EXPECT_EQ(again.text, o.text) << "what --print-config writes reads back the same";

  std::ofstream(file) << "leader_ttl = 5\nlistn = \"127.0.0.1:1\"\n";
  o = Tessera("controller --config " + file);
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.text.find(file + ", line 2: key 'listn' is not an option of 'controller'"), std::string::npos)
      << o.text;
  std::ofstream(file) << "listen = \"127.0.0.1:1\n";
  o = Tessera("controller --config " + file);
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.text.find(file + " is not TOML: line 1"), std::string::npos) << o.text;
  std::ofstream(file) << "leader_ttl = 500\n";
  o = Tessera("controller --config " + file);
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.text.find("--leader-ttl: Value 500 not in range"), std::string::npos) << o.text;
  o = Tessera("memnode --config " + dir_ + "/missing.toml");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.text.find("missing.toml"), std::string::npos) << o.text;
}

// The example files doc/deploy.md points at are valid for the daemons.
TEST_F(CliTest, TheDeploymentExamplesAreValidConfigs) {
  Output o = Tessera(std::string("controller --config ") + TESSERA_DEPLOY_DIR + "/controller.toml --print-config");
  EXPECT_EQ(o.exit_code, 0) << o.text;
  EXPECT_NE(o.text.find("etcd = [ '10.0.0.1:2379', '10.0.0.2:2379', '10.0.0.3:2379' ]"), std::string::npos)
      << o.text;
  o = Tessera(std::string("memnode --config ") + TESSERA_DEPLOY_DIR + "/memnode.toml --print-config");
  EXPECT_EQ(o.exit_code, 0) << o.text;
  EXPECT_NE(o.text.find("capacity = '48G'"), std::string::npos) << o.text;
}

TEST_F(CliTest, ADaemonThatCannotListenSaysWhyAndExits) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  Output o = Tessera("memnode --controller 127.0.0.1:1 --listen " + addr);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.text.find("already in use"), std::string::npos) << o.text;
  o = Tessera("controller --data-dir " + dir_ + "/ctl --listen " + addr);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.text.find("already in use"), std::string::npos) << o.text;
  close(fd);
}

TEST_F(CliTest, UpThenStatusAndRegionsWithoutFlags) {
  std::string bin = std::getenv("TESSERA_BIN");
  auto up = SpawnProcess({bin, "up", "--capacity", "64M", "--listen", "127.0.0.1:0"},
                         dir_ + "/up.log");
  ASSERT_TRUE(up.ok());
  for (int i = 0; i < 500 && !std::filesystem::exists(dir_ + "/up.json"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/up.json")) << "tessera up did not come up";

  Output created = Tessera("region create cli-region 10M");
  EXPECT_EQ(created.exit_code, 0) << created.text;
  EXPECT_NE(created.text.find("ec:4+2, on 7 memory node(s)"), std::string::npos) << created.text;
  Output dup = Tessera("region create cli-region 10M");
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_NE(dup.text.find("already exists"), std::string::npos) << dup.text;

  Output status = Tessera("status --json");
  ASSERT_EQ(status.exit_code, 0) << status.text;
  auto j = nlohmann::json::parse(status.text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << status.text;
  EXPECT_EQ(j["nodes"].size(), 7u) << "up starts enough nodes for its default, ec:4+2, and a spare";
  EXPECT_EQ(j["regions"][0]["name"], "cli-region");
  EXPECT_EQ(j["regions"][0]["bytes"], 10 << 20);
  EXPECT_EQ(j["regions"][0]["redundancy"], "ec:4+2");
  EXPECT_EQ(j["regions"][0]["health"], "healthy");
  Output wide = Tessera("region create too-wide 1M --redundancy ec:8+3");
  EXPECT_EQ(wide.exit_code, 1);
  EXPECT_NE(wide.text.find("11 distinct memory nodes; 7 are live"), std::string::npos) << wide.text;
  Output junk = Tessera("region create junk 1M --redundancy raid5");
  EXPECT_EQ(junk.exit_code, 1);
  EXPECT_NE(junk.text.find("'raid5'"), std::string::npos) << junk.text;

  Output ls = Tessera("region ls");
  EXPECT_NE(ls.text.find("cli-region"), std::string::npos) << ls.text;
  EXPECT_EQ(Tessera("region rm cli-region").exit_code, 0);
  EXPECT_NE(Tessera("region ls").text.find("no regions"), std::string::npos);
  Output gone = Tessera("region rm cli-region");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.text.find("no region named 'cli-region'"), std::string::npos) << gone.text;

  kill(*up, SIGINT);  // Ctrl-C
  int st = 0;
  waitpid(*up, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "clean shutdown on Ctrl-C";
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/up.json")) << "the run file is removed";
}

}  // namespace
}  // namespace tessera
