#include "proto/frame.h"

#include <gtest/gtest.h>

namespace tessera::proto {
namespace {

Bytes Header(FrameHeader h) {
  Bytes b;
  AppendHeader(h, &b);
  return b;
}

TEST(FrameTest, RoundTrips) {
  FrameHeader h{.opcode = static_cast<uint8_t>(Op::kC2mReadPages), .status = 0, .body_len = 77,
                .request_id = 0x1122334455667788ull};
  Bytes b = Header(h);
  ASSERT_EQ(b.size(), kHeaderSize);
  Result<FrameHeader> d = DecodeHeader(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, h.opcode);
  EXPECT_EQ(d->body_len, 77u);
  EXPECT_EQ(d->request_id, h.request_id);
  EXPECT_FALSE(d->is_reply());
}

TEST(FrameTest, PatchBodyLengthCoversTheBody) {
  Bytes b;
  AppendHeader({.opcode = static_cast<uint8_t>(Op::kC2mWritePages)}, &b);
  b.resize(b.size() + 123);
  PatchBodyLength(&b, 0);
  EXPECT_EQ(DecodeHeader(ByteSpan(b.data(), kHeaderSize))->body_len, 123u);
}

TEST(FrameTest, RejectsEveryBrokenField) {
  FrameHeader good{.opcode = static_cast<uint8_t>(Op::kC2mReadPages)};
  auto mutate = [&](size_t offset, uint8_t value) {
    Bytes b = Header(good);
    b[offset] = value;
    return DecodeHeader(b).status();
  };
  EXPECT_EQ(mutate(0, 0).code(), Code::kProtocol);      // magic
  EXPECT_EQ(mutate(2, 9).code(), Code::kProtocol);      // version
  EXPECT_EQ(mutate(3, 0x7f).code(), Code::kProtocol);   // opcode
  EXPECT_EQ(mutate(4, 1).code(), Code::kProtocol);      // status in a request
  EXPECT_EQ(mutate(6, 1).code(), Code::kProtocol);      // reserved
  EXPECT_EQ(mutate(11, 0xff).code(), Code::kProtocol);  // huge body
  EXPECT_NE(mutate(11, 0xff).message().find("exceeds"), std::string::npos);
}

TEST(FrameTest, RepliesMayCarryStatus) {
  FrameHeader h{.opcode = static_cast<uint8_t>(Op::kC2mReadPages) | kReplyBit,
                .status = static_cast<uint16_t>(Code::kNotFound)};
  Result<FrameHeader> d = DecodeHeader(Header(h));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->is_reply());
  EXPECT_EQ(d->status, static_cast<uint16_t>(Code::kNotFound));
}

}  // namespace
}  // namespace tessera::proto
