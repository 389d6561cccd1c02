#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

namespace tessera::net {

Result<SockAddr> ParseAddress(const std::string& hp) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("address '" + hp + "' " + why + " (expected host:port, e.g. 127.0.0.1:7000)");
  };
  size_t colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("has no port");
  std::string host = hp.substr(0, colon);
  std::string port_s = hp.substr(colon + 1);
  char* end = nullptr;
  long port = std::strtol(port_s.c_str(), &end, 10);
  if (port_s.empty() || *end != '\0' || port < 0 || port > 65535) return bad("has a bad port");
  if (host == "localhost") host = "127.0.0.1";
  SockAddr a;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &s6->sin6_addr) != 1) {
      return bad("has a bad IPv6 host");
    }
    a.len = sizeof *s6;
    return a;
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) != 1) return bad("has a host that is not a numeric IP");
  a.len = sizeof *s4;
  return a;
}

std::string FormatAddress(const SockAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.storage.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(s6->sin6_port));
  }
  const auto* s4 = reinterpret_cast<const sockaddr_in*>(&a.storage);
  inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(s4->sin_port));
}

Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Status::FromErrno(errno, "fcntl O_NONBLOCK");
  return Status::Ok();
}

Status SetNoDelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
    return Status::FromErrno(errno, "setsockopt TCP_NODELAY");
  }
  return Status::Ok();
}

Result<Listener> Listen(const std::string& hp, int backlog) {
  TS_ASSIGN_OR_RETURN(SockAddr a, ParseAddress(hp));
  UniqueFd fd(socket(a.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a.storage), a.len) < 0) {
    Status s = Status::FromErrno(errno, "bind " + hp);
    if (errno == EADDRINUSE) s = Status(s.code(), s.message() + " (another process listens there: pick another address)");
    return s;
  }
  if (listen(fd.get(), backlog) < 0) return Status::FromErrno(errno, "listen " + hp);
  SockAddr bound;
  bound.len = sizeof bound.storage;
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound.storage), &bound.len) < 0) {
    return Status::FromErrno(errno, "getsockname");
  }
  return Listener{std::move(fd), FormatAddress(bound)};
}

Result<UniqueFd> Connect(const std::string& hp, int timeout_ms) {
  TS_ASSIGN_OR_RETURN(SockAddr a, ParseAddress(hp));
  UniqueFd fd(socket(a.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a.storage), a.len) < 0) {
    if (errno != EINPROGRESS) return Status::FromErrno(errno, "connect " + hp);
    pollfd p{fd.get(), POLLOUT, 0};
    int n;
    do {
      n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return TimedOut("connect " + hp + ": no answer within " + std::to_string(timeout_ms) + " ms");
    if (n < 0) return Status::FromErrno(errno, "poll connect " + hp);
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status::FromErrno(err, "connect " + hp);
  }
  TS_RETURN_IF_ERROR(SetNoDelay(fd.get()));
  return fd;
}

}  // namespace tessera::net
