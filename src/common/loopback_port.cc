#include "common/loopback_port.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <mutex>
#include <random>
#include <set>

#include "common/unique_fd.h"

namespace tessera {
namespace {

constexpr int kLowest = 10000;  // below: ports well-known services use

// The first port the kernel uses for outgoing connections; 0 if it cannot be
// read or leaves too little room below it.
int EphemeralStart() {
  std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f == nullptr) return 0;
  int low = 0, high = 0;
  const bool read = std::fscanf(f, "%d %d", &low, &high) == 2;
  std::fclose(f);
  return read && low > kLowest + 1000 ? low : 0;
}

// Binds 127.0.0.1:port (0: any) and returns the port bound.
Result<int> Bind(int port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof a;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    return Status::FromErrno(errno, "bind 127.0.0.1:" + std::to_string(port));
  }
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Status::FromErrno(errno, "getsockname");
  }
  return static_cast<int>(ntohs(a.sin_port));
}

}  // namespace

Result<int> PickLoopbackPort() {
  // What this process has handed out: a daemon may not have bound its port
  // yet, so a bind cannot tell that it is taken.
  static std::mutex mu;
  static std::set<int> given;
  static std::mt19937 rng{std::random_device{}()};
  std::lock_guard lk(mu);
  const int end = EphemeralStart();
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = 0;
    if (end != 0) port = std::uniform_int_distribution<int>(kLowest, end - 1)(rng);
    if (given.contains(port)) continue;
    Result<int> bound = Bind(port);
    if (!bound.ok()) continue;
    if (given.insert(*bound).second) return *bound;
  }
  return Unavailable("no free loopback port found in 1000 tries");
}

Result<std::string> PickLoopbackAddress() {
  TS_ASSIGN_OR_RETURN(int port, PickLoopbackPort());
  return "127.0.0.1:" + std::to_string(port);
}

}  // namespace tessera
