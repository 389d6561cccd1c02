// TCP socket set-up for Tessera's transport: address parsing, listening,
// connecting with a deadline, and the socket options the data plane needs
// (TCP_NODELAY: a 4 KiB page must not wait for Nagle).
//
// Addresses are "host:port" with a numeric IPv4 host or "localhost";
// "[v6addr]:port" for IPv6. Port 0 in Listen picks a free port.
//
// Thread-safety: pure functions over the descriptors they are given.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tessera::net {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
};

Result<SockAddr> ParseAddress(const std::string& host_port);
std::string FormatAddress(const SockAddr& a);

struct Listener {
  UniqueFd fd;
  std::string address;  // with the real port, e.g. "127.0.0.1:40123"
};
Result<Listener> Listen(const std::string& host_port, int backlog = 256);

// Connects within timeout_ms and returns a non-blocking socket with
// TCP_NODELAY set.
Result<UniqueFd> Connect(const std::string& host_port, int timeout_ms);

Status SetNonBlocking(int fd);
Status SetNoDelay(int fd);

}  // namespace tessera::net
