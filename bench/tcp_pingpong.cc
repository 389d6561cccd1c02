#include "bench/tcp_pingpong.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/clock.h"
#include "net/socket.h"

namespace tessera::bench {
namespace {

constexpr size_t kRequest = 16;
constexpr size_t kReply = 4096;

// Reads exactly n bytes from a non-blocking socket, spinning then blocking
// like net::WaitPolicy says. False on EOF or error.
bool RecvAll(int fd, uint8_t* buf, size_t n, net::WaitPolicy& wait) {
  size_t got = 0;
  uint64_t spin_until = NowNanos() + wait.SpinBudgetNanos();
  while (got < n) {
    ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR)) return false;
    if (NowNanos() < spin_until) {
      sched_yield();
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 1000);
  }
  return true;
}

bool SendAll(int fd, const uint8_t* buf, size_t n) {
  size_t sent = 0;
  while (sent < n) {
    ssize_t r = ::send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
    if (r < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (r <= 0) return false;
    sent += static_cast<size_t>(r);
  }
  return true;
}

[[noreturn]] void Serve(int listen_fd, const net::WaitOptions& options) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  pollfd p{listen_fd, POLLIN, 0};
  poll(&p, 1, 10000);
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK);
  if (fd < 0) _exit(1);
  (void)net::SetNoDelay(fd);
  net::WaitPolicy wait(options);
  std::vector<uint8_t> req(kRequest), reply(kReply, 0x5a);
  while (RecvAll(fd, req.data(), kRequest, wait) && SendAll(fd, reply.data(), kReply)) {
  }
  _exit(0);
}

}  // namespace

Result<PingPongResult> RunTcpPingPong(uint64_t iterations, const net::WaitOptions& client_wait,
                                      const net::WaitOptions& server_wait) {
  TS_ASSIGN_OR_RETURN(net::Listener l, net::Listen("127.0.0.1:0"));
  pid_t child = fork();
  if (child < 0) return Status::FromErrno(errno, "fork");
  if (child == 0) Serve(l.fd.get(), server_wait);
  Result<UniqueFd> conn = net::Connect(l.address, 2000);
  PingPongResult result;
  Status status = conn.status();
  if (status.ok()) {
    net::WaitPolicy wait(client_wait);
    std::vector<uint8_t> req(kRequest, 1), reply(kReply);
    uint64_t t0 = NowNanos();
    for (uint64_t i = 0; i < iterations; ++i) {
      uint64_t start = NowNanos();
      if (!SendAll(conn->get(), req.data(), kRequest) || !RecvAll(conn->get(), reply.data(), kReply, wait)) {
        status = Unavailable("ping-pong server went away");
        break;
      }
      result.latency.Record(NowNanos() - start);
    }
    result.seconds = static_cast<double>(NowNanos() - t0) / 1e9;
    conn->Reset();
  }
  int st;
  waitpid(child, &st, 0);
  TS_RETURN_IF_ERROR(status);
  return result;
}

}  // namespace tessera::bench
