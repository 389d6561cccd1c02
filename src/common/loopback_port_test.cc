#include "common/loopback_port.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <set>

#include <gtest/gtest.h>

#include "common/unique_fd.h"

namespace tessera {
namespace {

TEST(LoopbackPortTest, PicksAreDistinctBindableAndOutsideTheEphemeralRange) {
  int low = 0, high = 0;
  std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fscanf(f, "%d %d", &low, &high), 2);
  std::fclose(f);
  std::set<int> seen;
  for (int i = 0; i < 500; ++i) {
    Result<int> p = PickLoopbackPort();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_TRUE(seen.insert(*p).second) << "port " << *p << " picked twice";
    if (low > 11000) {
      EXPECT_LT(*p, low);
    }
    if (i % 50 == 0) {  // free right after the pick: a daemon can bind it
      UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(*p));
      EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "port " << *p;
    }
  }
  Result<std::string> addr = PickLoopbackAddress();
  ASSERT_TRUE(addr.ok());
  EXPECT_TRUE(addr->starts_with("127.0.0.1:")) << *addr;
}

}  // namespace
}  // namespace tessera
