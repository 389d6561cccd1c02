#include "bench/memcached_baseline.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/subprocess.h"
#include "net/socket.h"
#include "net/wait_policy.h"

namespace tessera::bench {
namespace {

constexpr size_t kValue = 4096;

std::string Key(uint64_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%08llu", static_cast<unsigned long long>(i % 100000000));
  return buf;
}

// Every GET of an existing key is answered with exactly this many bytes.
size_t ReplySize() { return std::string("VALUE k00000000 0 4096\r\n").size() + kValue + 2 + 5; }

Status SendAll(int fd, const std::string& s) {
  size_t sent = 0;
  while (sent < s.size()) {
    ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return Status::FromErrno(errno, "send to memcached");
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status RecvExactly(int fd, size_t n, std::string* out) {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, out->data() + got, n - got, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (r <= 0) return Unavailable("memcached closed the connection");
    got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

struct Conn {
  UniqueFd fd;
  std::deque<uint64_t> sent_at;
  std::string in;
};

}  // namespace

Result<std::unique_ptr<Memcached>> Memcached::Start(int threads, uint64_t keys) {
  std::unique_ptr<Memcached> m(new Memcached());
  TS_ASSIGN_OR_RETURN(net::Listener probe, net::Listen("127.0.0.1:0"));
  m->address_ = probe.address;
  std::string port = m->address_.substr(m->address_.rfind(':') + 1);
  probe.fd.Reset();
  TS_ASSIGN_OR_RETURN(m->pid_, SpawnProcess({"memcached", "-u", "root", "-l", "127.0.0.1", "-p", port, "-U", "0",
                                              "-t", std::to_string(threads), "-m", "2048"}));
  Result<UniqueFd> fd = Unavailable("memcached did not start");
  for (int i = 0; i < 200 && !fd.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    fd = net::Connect(m->address_, 1000);
  }
  if (!fd.ok()) return Unavailable("memcached did not start (is the 'memcached' package installed?)");
  m->keys_ = keys;
  std::string value(kValue, 'v');
  std::string reply;
  for (uint64_t i = 0; i < keys; i += 64) {
    std::string batch;
    uint64_t n = std::min<uint64_t>(64, keys - i);
    for (uint64_t j = 0; j < n; ++j) batch += "set " + Key(i + j) + " 0 0 4096\r\n" + value + "\r\n";
    TS_RETURN_IF_ERROR(SendAll(fd->get(), batch));
    TS_RETURN_IF_ERROR(RecvExactly(fd->get(), n * 8, &reply));  // "STORED\r\n"
    if (reply.find("STORED") != 0) return Internal("memcached refused a SET: " + reply.substr(0, 40));
  }
  return m;
}

Memcached::~Memcached() { StopProcess(pid_, 2000); }

Result<KvResult> Memcached::RunGets(int connections, uint32_t depth, double seconds) {
  std::vector<Conn> conns(connections);
  for (Conn& c : conns) {
    TS_ASSIGN_OR_RETURN(c.fd, net::Connect(address_, 2000));
  }
  net::WaitPolicy wait({});
  std::mt19937_64 rng(7);
  const size_t reply = ReplySize();
  KvResult result;
  uint64_t t0 = NowNanos(), end = t0 + static_cast<uint64_t>(seconds * 1e9);
  std::vector<pollfd> fds(conns.size());
  std::string chunk(256 * 1024, '\0');
  uint64_t spin_until = 0;
  for (bool sending = true;;) {
    uint64_t now = NowNanos();
    if (now >= end) sending = false;
    size_t outstanding = 0;
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      uint32_t share = depth / connections + (i < depth % connections ? 1 : 0);
      std::string reqs;
      while (sending && c.sent_at.size() < std::max<uint32_t>(share, 1)) {
        reqs += "get " + Key(rng() % keys_) + "\r\n";
        c.sent_at.push_back(now);
      }
      if (!reqs.empty()) TS_RETURN_IF_ERROR(SendAll(c.fd.get(), reqs));
      outstanding += c.sent_at.size();
    }
    if (outstanding == 0) break;
    bool progress = false;
    for (Conn& c : conns) {
      ssize_t n = ::recv(c.fd.get(), chunk.data(), chunk.size(), MSG_DONTWAIT);
      if (n == 0) return Unavailable("memcached closed the connection");
      if (n < 0) continue;
      progress = true;
      c.in.append(chunk.data(), static_cast<size_t>(n));
      size_t whole = c.in.size() / reply;
      uint64_t done_at = NowNanos();
      for (size_t k = 0; k < whole; ++k) {
        if (c.in.compare(k * reply, 6, "VALUE ") != 0) return Internal("unexpected reply from memcached");
        result.latency.Record(done_at - c.sent_at.front());
        c.sent_at.pop_front();
        ++result.ops;
      }
      c.in.erase(0, whole * reply);
    }
    if (progress) {
      spin_until = NowNanos() + wait.SpinBudgetNanos();
    } else if (NowNanos() >= spin_until) {
      for (size_t i = 0; i < conns.size(); ++i) fds[i] = {conns[i].fd.get(), POLLIN, 0};
      poll(fds.data(), fds.size(), 100);
    }
  }
  result.seconds = static_cast<double>(NowNanos() - t0) / 1e9;
  return result;
}

}  // namespace tessera::bench
