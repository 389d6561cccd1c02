#include "vnode/agent_protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace tessera::vnode {
namespace {

TEST(AgentProtocolTest, EveryFieldRoundTrips) {
  AgentMessage m{.op = AgentOp::kMoved, .token = 0xDEADBEEF, .a = ~0ull, .b = 1, .c = 1ull << 40, .d = 7};
  uint8_t buf[kAgentMessageBytes];
  EncodeAgentMessage(m, buf);
  auto got = DecodeAgentMessage(buf);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->op, m.op);
  EXPECT_EQ(got->token, m.token);
  EXPECT_EQ(got->a, m.a);
  EXPECT_EQ(got->b, m.b);
  EXPECT_EQ(got->c, m.c);
  EXPECT_EQ(got->d, m.d);
}

TEST(AgentProtocolTest, MalformedMessagesAreRejected) {
  uint8_t buf[kAgentMessageBytes];
  EncodeAgentMessage({.op = AgentOp::kDrop}, buf);
  EXPECT_EQ(DecodeAgentMessage({buf, sizeof buf - 1}).status().code(), Code::kProtocol);
  for (size_t at : {size_t{0}, size_t{4}, size_t{6}, size_t{12}}) {  // magic, op, reserved, reserved
    uint8_t bad[kAgentMessageBytes];
    std::memcpy(bad, buf, sizeof buf);
    bad[at] ^= 0x40;
    EXPECT_EQ(DecodeAgentMessage(bad).status().code(), Code::kProtocol) << "byte " << at;
  }
  uint8_t zero_op[kAgentMessageBytes];
  std::memcpy(zero_op, buf, sizeof buf);
  zero_op[4] = 0;
  EXPECT_EQ(DecodeAgentMessage(zero_op).status().code(), Code::kProtocol);
}

TEST(AgentProtocolTest, ADescriptorTravelsWithAHelloOrAForkReadyAndNothingElse) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  ASSERT_TRUE(SendAgentMessage(sv[0], {.op = AgentOp::kHello, .a = 1}, pipefd[1]).ok());
  UniqueFd got;
  auto hello = RecvAgentMessage(sv[1], &got);
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  ASSERT_TRUE(got.valid());
  ASSERT_EQ(write(got.get(), "x", 1), 1);  // the same pipe
  char c = 0;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  // A forked child's ready carries its userfaultfd.
  ASSERT_TRUE(SendAgentMessage(sv[0], {.op = AgentOp::kForkReady}, pipefd[1]).ok());
  UniqueFd child;
  auto ready = RecvAgentMessage(sv[1], &child);
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->op, AgentOp::kForkReady);
  EXPECT_TRUE(child.valid());
  // A descriptor on any other message is an error (and is closed).
  for (AgentOp op : {AgentOp::kDropped, AgentOp::kForkHello}) {
    ASSERT_TRUE(SendAgentMessage(sv[0], {.op = op}, pipefd[1]).ok());
    EXPECT_EQ(RecvAgentMessage(sv[1], &got).status().code(), Code::kProtocol) << static_cast<int>(op);
  }
  uint8_t past_last[kAgentMessageBytes];
  EncodeAgentMessage({.op = AgentOp::kForkReady}, past_last);
  past_last[4] = static_cast<uint8_t>(kAgentOpLast + 1);
  EXPECT_EQ(DecodeAgentMessage(past_last).status().code(), Code::kProtocol);
  // A packet of the wrong size.
  ASSERT_EQ(send(sv[0], "short", 5, 0), 5);
  EXPECT_EQ(RecvAgentMessage(sv[1]).status().code(), Code::kProtocol);
  close(sv[0]);
  EXPECT_EQ(RecvAgentMessage(sv[1]).status().message(), "closed");
  close(sv[1]);
  close(pipefd[0]);
  close(pipefd[1]);
}

}  // namespace
}  // namespace tessera::vnode
