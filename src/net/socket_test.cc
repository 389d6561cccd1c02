#include "net/socket.h"

#include <gtest/gtest.h>

namespace tessera::net {
namespace {

TEST(SocketTest, ParsesAndFormatsAddresses) {
  EXPECT_EQ(FormatAddress(*ParseAddress("127.0.0.1:7000")), "127.0.0.1:7000");
  EXPECT_EQ(FormatAddress(*ParseAddress("localhost:1")), "127.0.0.1:1");
  EXPECT_EQ(FormatAddress(*ParseAddress("[::1]:80")), "[::1]:80");
  for (const char* bad : {"", "127.0.0.1", ":80", "host:80", "1.2.3.4:99999", "1.2.3.4:x"}) {
    EXPECT_EQ(ParseAddress(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(SocketTest, ListenPicksAPortAndConnectReachesIt) {
  Result<Listener> l = Listen("127.0.0.1:0");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_NE(l->address, "127.0.0.1:0");
  Result<UniqueFd> c = Connect(l->address, 1000);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

TEST(SocketTest, ConnectToAClosedPortIsUnavailable) {
  std::string addr;
  {
    Result<Listener> l = Listen("127.0.0.1:0");
    ASSERT_TRUE(l.ok());
    addr = l->address;
  }
  EXPECT_EQ(Connect(addr, 1000).status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace tessera::net
