#include "net/frame_buffer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/unique_fd.h"

namespace tessera::net {
namespace {

class FrameBufferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    writer_.Reset(sv[0]);
    reader_.Reset(sv[1]);
    int big = 64 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  }
  static proto::Bytes Frame(uint64_t id, size_t body) {
    proto::Bytes b;
    proto::AppendHeader({.opcode = static_cast<uint8_t>(proto::Op::kC2mReadPages), .body_len = 0, .request_id = id}, &b);
    b.resize(b.size() + body, static_cast<uint8_t>(id));
    proto::PatchBodyLength(&b, 0);
    return b;
  }
  void Send(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(writer_.get(), p, n, 0);
      if (w < 0) {
        // Drain what arrived so the socket makes room.
        ASSERT_TRUE(in_.ReadFrom(reader_.get()).ok());
        continue;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  UniqueFd writer_, reader_;
  FrameBuffer in_;
};

TEST_F(FrameBufferTest, CutsFramesThatArriveInPieces) {
  proto::Bytes a = Frame(1, 10), b = Frame(2, 5000);
  proto::Bytes both = a;
  both.insert(both.end(), b.begin(), b.end());
  Send(both.data(), 7);  // part of a header
  ASSERT_TRUE(in_.ReadFrom(reader_.get()).ok());
  EXPECT_FALSE(in_.Next()->complete);
  Send(both.data() + 7, both.size() - 7 - 100);
  ASSERT_TRUE(in_.ReadFrom(reader_.get()).ok());
  auto f = in_.Next();
  ASSERT_TRUE(f.ok() && f->complete);
  EXPECT_EQ(f->header.request_id, 1u);
  EXPECT_EQ(f->body.size(), 10u);
  in_.Consume();
  EXPECT_FALSE(in_.Next()->complete) << "the second frame is 100 bytes short";
  Send(both.data() + both.size() - 100, 100);
  ASSERT_TRUE(in_.ReadFrom(reader_.get()).ok());
  f = in_.Next();
  ASSERT_TRUE(f.ok() && f->complete);
  EXPECT_EQ(f->body.size(), 5000u);
  EXPECT_EQ(f->body[4999], 2);
  in_.Consume();
  EXPECT_EQ(in_.buffered(), 0u);
}

TEST_F(FrameBufferTest, ABadHeaderIsAnError) {
  proto::Bytes junk(proto::kHeaderSize, 0xAB);
  Send(junk.data(), junk.size());
  ASSERT_TRUE(in_.ReadFrom(reader_.get()).ok());
  EXPECT_EQ(in_.Next().status().code(), Code::kProtocol);
}

TEST_F(FrameBufferTest, ReportsEndOfStream) {
  writer_.Reset();
  auto r = in_.ReadFrom(reader_.get());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->eof);
}

TEST_F(FrameBufferTest, TakesAFrameOfTheMaximumSize) {
  proto::Bytes big = Frame(9, proto::kMaxBody);
  Send(big.data(), big.size());
  for (int i = 0; i < 100 && !in_.Next()->complete; ++i) ASSERT_TRUE(in_.ReadFrom(reader_.get()).ok());
  auto f = in_.Next();
  ASSERT_TRUE(f.ok() && f->complete);
  EXPECT_EQ(f->body.size(), proto::kMaxBody);
  in_.Consume();
}

}  // namespace
}  // namespace tessera::net
