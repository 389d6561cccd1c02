// tessera-loop-bench: which event loop should a memory node use? Serves the
// memory node's traffic shape — 16-byte requests answered by 4 KiB pages,
// pipelined over a few connections — from a child process with (a) epoll plus
// recv/send, as net::TcpServer does, and (b) io_uring (liburing) with one
// recv outstanding per connection and sends submitted in batches; the
// client is the same for both. Prints pages/s and latency per loop and the
// io_uring/epoll ratio. Decision and figures: doc/design.md.
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "common/clock.h"
#include "common/histogram.h"
#include "common/units.h"
#include "net/socket.h"

namespace tessera::bench {
namespace {

constexpr size_t kReq = 16;
constexpr size_t kPage = 4096;

struct ConnState {
  int fd;
  std::vector<uint8_t> in = std::vector<uint8_t>(64 * 1024);
  size_t have = 0;
};

// Turns whole requests in `c` into replies appended to `out`.
size_t Replies(ConnState& c, std::vector<uint8_t>* out) {
  size_t n = c.have / kReq;
  out->resize(out->size() + n * kPage, 0x5a);
  std::memmove(c.in.data(), c.in.data() + n * kReq, c.have - n * kReq);
  c.have -= n * kReq;
  return n;
}

void SendAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EAGAIN) {
      pollfd pf{fd, POLLOUT, 0};
      poll(&pf, 1, 100);
      continue;
    }
    if (r <= 0) return;
    p += r;
    n -= static_cast<size_t>(r);
  }
}

[[noreturn]] void ServeEpoll(std::vector<int> fds) {
  int ep = epoll_create1(0);
  std::vector<ConnState> conns;
  for (int fd : fds) conns.push_back({fd});
  for (auto& c : conns) {
    epoll_event ev{.events = EPOLLIN, .data = {.ptr = &c}};
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }
  std::vector<uint8_t> out;
  epoll_event evs[16];
  size_t open = conns.size();
  while (open > 0) {
    int n = epoll_wait(ep, evs, 16, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<ConnState*>(evs[i].data.ptr);
      ssize_t r = ::recv(c->fd, c->in.data() + c->have, c->in.size() - c->have, MSG_DONTWAIT);
      if (r == 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
        --open;
        continue;
      }
      if (r < 0) continue;
      c->have += static_cast<size_t>(r);
      out.clear();
      Replies(*c, &out);
      SendAll(c->fd, out.data(), out.size());
    }
  }
  _exit(0);
}

[[noreturn]] void ServeUring(std::vector<int> fds) {
  io_uring ring;
  if (io_uring_queue_init(64, &ring, 0) != 0) _exit(2);
  std::vector<ConnState> conns;
  for (int fd : fds) conns.push_back({fd});
  std::vector<std::vector<uint8_t>> out(conns.size());
  std::vector<bool> sending(conns.size(), false);
  auto post_recv = [&](size_t i) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv(sqe, conns[i].fd, conns[i].in.data() + conns[i].have, conns[i].in.size() - conns[i].have, 0);
    io_uring_sqe_set_data64(sqe, i << 1);
  };
  for (size_t i = 0; i < conns.size(); ++i) post_recv(i);
  size_t open = conns.size();
  std::vector<std::vector<uint8_t>> pending(conns.size());
  while (open > 0) {
    io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      size_t i = io_uring_cqe_get_data64(cqe) >> 1;
      bool is_send = io_uring_cqe_get_data64(cqe) & 1;
      if (is_send) {
        sending[i] = false;
        // A short send of a large buffer is rare on loopback; finish it inline.
        if (cqe->res > 0 && static_cast<size_t>(cqe->res) < out[i].size()) {
          SendAll(conns[i].fd, out[i].data() + cqe->res, out[i].size() - cqe->res);
        }
        out[i].clear();
      } else if (cqe->res <= 0) {
        --open;
        continue;
      } else {
        conns[i].have += static_cast<size_t>(cqe->res);
        Replies(conns[i], &pending[i]);
        post_recv(i);
      }
      if (!sending[i] && !pending[i].empty()) {
        out[i].swap(pending[i]);
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_send(sqe, conns[i].fd, out[i].data(), out[i].size(), MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (i << 1) | 1);
        sending[i] = true;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  _exit(0);
}

struct Result {
  double pages_per_s;
  LatencyHistogram latency;
};

// Keeps `depth` requests in flight over `conns` connections for `seconds`.
Result Drive(bool uring, int conns, int depth, double seconds) {
  auto listener = net::Listen("127.0.0.1:0");
  std::vector<UniqueFd> client;
  std::vector<int> server_fds;
  for (int i = 0; i < conns; ++i) {
    client.push_back(std::move(*net::Connect(listener->address, 1000)));
    pollfd p{listener->fd.get(), POLLIN, 0};
    poll(&p, 1, 1000);
    int fd = accept(listener->fd.get(), nullptr, nullptr);
    (void)net::SetNoDelay(fd);
    server_fds.push_back(fd);
  }
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    client.clear();
    uring ? ServeUring(server_fds) : ServeEpoll(server_fds);
  }
  for (int fd : server_fds) close(fd);
  Result r{};
  std::vector<std::deque<uint64_t>> sent(conns);
  std::vector<size_t> got(conns, 0);
  std::vector<uint8_t> buf(1 << 20), req(kReq * 64, 1);
  uint64_t t0 = NowNanos(), end = t0 + static_cast<uint64_t>(seconds * 1e9), pages = 0;
  std::vector<pollfd> pfds(conns);
  for (bool more = true;;) {
    uint64_t now = NowNanos();
    if (now >= end) more = false;
    size_t outstanding = 0;
    for (int i = 0; i < conns; ++i) {
      size_t share = static_cast<size_t>(depth / conns + (i < depth % conns ? 1 : 0));
      size_t want = more && sent[i].size() < share ? share - sent[i].size() : 0;
      if (want > 0) {
        for (size_t k = 0; k < want; ++k) sent[i].push_back(now);
        SendAll(client[i].get(), req.data(), want * kReq);
      }
      outstanding += sent[i].size();
    }
    if (outstanding == 0) break;
    for (int i = 0; i < conns; ++i) pfds[i] = {client[i].get(), POLLIN, 0};
    poll(pfds.data(), pfds.size(), 100);
    for (int i = 0; i < conns; ++i) {
      ssize_t n = ::recv(client[i].get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) continue;
      got[i] += static_cast<size_t>(n);
      uint64_t at = NowNanos();
      while (got[i] >= kPage && !sent[i].empty()) {
        r.latency.Record(at - sent[i].front());
        sent[i].pop_front();
        got[i] -= kPage;
        ++pages;
      }
    }
  }
  r.pages_per_s = static_cast<double>(pages) / (static_cast<double>(NowNanos() - t0) / 1e9);
  client.clear();
  int st;
  waitpid(child, &st, 0);
  return r;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  using namespace tessera;
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::printf("%-8s %5s %6s %12s %10s %10s\n", "LOOP", "CONNS", "DEPTH", "PAGES/S", "P50", "P99");
  for (auto [conns, depth] : {std::pair{1, 1}, std::pair{3, 8}, std::pair{3, 64}}) {
    double rate[2];
    for (bool uring : {false, true}) {
      auto r = bench::Drive(uring, conns, depth, seconds);
      rate[uring] = r.pages_per_s;
      std::printf("%-8s %5d %6d %12.0f %10s %10s\n", uring ? "io_uring" : "epoll", conns, depth, r.pages_per_s,
                  FormatSeconds(r.latency.Percentile(50) / 1e9).c_str(),
                  FormatSeconds(r.latency.Percentile(99) / 1e9).c_str());
    }
    std::printf("%-8s %5d %6d %12.2f  (io_uring / epoll)\n", "ratio", conns, depth, rate[1] / rate[0]);
  }
  return 0;
}
