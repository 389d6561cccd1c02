// TCP implementation of net::ClientTransport and net::Connection.
//
// All connections of one transport share an epoll set. The thread that waits
// (WaitUntil) receives for everyone: it takes the `receiving_` role, polls the
// set (spinning first, per WaitPolicy), cuts frames and runs their callbacks,
// then hands the role back and wakes the other waiters. Sends go straight
// from the caller's thread to the socket under the connection's send lock.
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/check.h"
#include "common/clock.h"
#include "net/frame_buffer.h"
#include "net/socket.h"
#include "net/transport.h"

namespace tessera::net {
namespace {

class TcpClient;

class TcpConnection final : public Connection {
 public:
  TcpConnection(TcpClient* owner, UniqueFd fd, std::string peer)
      : owner_(owner), fd_(std::move(fd)), peer_(std::move(peer)), heard_ns_(NowNanos()) {}
  ~TcpConnection() override { Abort(Cancelled("connection closed")); }

  const std::string& peer() const override { return peer_; }
  Status Send(proto::Op op, proto::ByteSpan body, ReplyCallback callback) override;
  void Abort(const Status& why) override;
  bool broken() const override { return broken_.load(); }
  bool PeerHungUp() override {
    if (broken()) return true;
    pollfd p{fd_.get(), POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }
  uint64_t last_heard_ns() const override { return heard_ns_.load(std::memory_order_relaxed); }

  int fd() const { return fd_.get(); }
  // Receiver side; called only by the thread holding the receiving role.
  // Returns whether any bytes arrived (or the connection ended).
  bool OnReadable();

 private:
  Status WriteAll(const iovec* iov, int iovcnt);

  TcpClient* owner_;
  UniqueFd fd_;
  std::string peer_;
  std::atomic<bool> broken_{false};
  std::atomic<uint64_t> heard_ns_;
  std::mutex send_mu_;
  FrameBuffer in_;  // receiver-only
  // Guarded by owner_->mu_.
  std::unordered_map<uint64_t, ReplyCallback> pending_;
  friend class TcpClient;
};

class TcpClient final : public ClientTransport {
 public:
  explicit TcpClient(const ClientOptions& o, UniqueFd ep) : options_(o), epoll_(std::move(ep)), wait_(o.wait) {}
  ~TcpClient() override;

  Result<std::shared_ptr<Connection>> Connect(const std::string& address) override;
  Status WaitUntil(const std::function<bool()>& done, uint64_t deadline_ns) override;
  Status WatchFd(int fd, std::atomic<bool>* fired) override;
  void UnwatchFd(int fd) override;

  const ClientOptions& options() const { return options_; }
  uint64_t NextRequestId() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  std::mutex mu_;

 private:
  void PollOnce(uint64_t deadline_ns);
  // The only connection with calls outstanding, when there is one and no fd
  // is watched (null otherwise).
  std::shared_ptr<TcpConnection> SoleAwaitedConnection();

  ClientOptions options_;
  UniqueFd epoll_;
  WaitPolicy wait_;
  std::atomic<uint64_t> next_id_{1};
  std::condition_variable cv_;
  bool receiving_ = false;  // guarded by mu_
  // Every connection ever made and still referenced; guarded by mu_. The
  // epoll tags are raw pointers into these.
  std::unordered_map<TcpConnection*, std::weak_ptr<TcpConnection>> conns_;
  // Watched descriptors (WatchFd), by the epoll tag; guarded by mu_.
  struct Watch {
    int fd;
    std::atomic<bool>* fired;
  };
  std::unordered_map<int, std::unique_ptr<Watch>> watches_;
  std::unordered_map<const void*, Watch*> watch_tags_;
  friend class TcpConnection;
};

Status TcpConnection::Send(proto::Op op, proto::ByteSpan body, ReplyCallback callback) {
  uint64_t id = owner_->NextRequestId();
  uint8_t header[proto::kHeaderSize];
  proto::EncodeHeader({.opcode = static_cast<uint8_t>(op), .status = 0,
                       .body_len = static_cast<uint32_t>(body.size()), .request_id = id},
                      header);
  {
    std::lock_guard lk(owner_->mu_);
    if (broken()) return Unavailable("connection to " + peer_ + " is broken");
    pending_.emplace(id, std::move(callback));
  }
  iovec iov[2] = {{header, sizeof header}, {const_cast<uint8_t*>(body.data()), body.size()}};
  Status s;
  {
    std::lock_guard lk(send_mu_);
    s = WriteAll(iov, body.empty() ? 1 : 2);
  }
  if (!s.ok()) {
    // The request may be half-written: the stream is unusable.
    Abort(s.With("send to " + peer_));
  }
  return Status::Ok();  // the callback reports any failure
}

Status TcpConnection::WriteAll(const iovec* iov_in, int iovcnt) {
  iovec iov[2] = {iov_in[0], iovcnt > 1 ? iov_in[1] : iovec{}};
  int first = 0;
  uint64_t deadline = NowNanos() + static_cast<uint64_t>(owner_->options().send_timeout_ms) * 1'000'000;
  while (first < iovcnt) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = static_cast<size_t>(iovcnt - first);
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return Status::FromErrno(errno, "send");
      uint64_t now = NowNanos();
      if (now >= deadline) return TimedOut("peer is not reading its socket");
      pollfd p{fd_.get(), POLLOUT, 0};
      poll(&p, 1, static_cast<int>((deadline - now) / 1'000'000) + 1);
      continue;
    }
    size_t left = static_cast<size_t>(n);
    while (first < iovcnt && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iovcnt) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return Status::Ok();
}

void TcpConnection::Abort(const Status& why) {
  std::unordered_map<uint64_t, ReplyCallback> failed;
  {
    std::lock_guard lk(owner_->mu_);
    if (broken_.exchange(true)) return;
    failed.swap(pending_);
    epoll_ctl(owner_->epoll_.get(), EPOLL_CTL_DEL, fd_.get(), nullptr);
    ::shutdown(fd_.get(), SHUT_RDWR);
  }
  for (auto& [id, cb] : failed) cb(why, proto::FrameHeader{}, {});
  // Taking the lock orders this wake-up after any waiter's predicate check.
  { std::lock_guard lk(owner_->mu_); }
  owner_->cv_.notify_all();
}

bool TcpConnection::OnReadable() {
  Result<FrameBuffer::ReadResult> got = in_.ReadFrom(fd_.get());
  if (!got.ok()) {
    Abort(got.status().With("receive from " + peer_));
    return true;
  }
  if (got->bytes == 0 && !got->eof) return false;
  if (got->bytes > 0) heard_ns_.store(NowNanos(), std::memory_order_relaxed);
  for (;;) {
    Result<FrameBuffer::Frame> f = in_.Next();
    if (!f.ok()) {
      Abort(f.status().With("reply from " + peer_));
      return true;
    }
    if (!f->complete) break;
    if (!f->header.is_reply()) {
      Abort(ProtocolError("request frame received from server " + peer_));
      return true;
    }
    ReplyCallback cb;
    {
      std::lock_guard lk(owner_->mu_);
      auto it = pending_.find(f->header.request_id);
      if (it != pending_.end()) {
        cb = std::move(it->second);
        pending_.erase(it);
      }
    }
    // A reply nobody waits for belongs to a call that was aborted; drop it.
    if (cb) cb(Status::Ok(), f->header, f->body);
    in_.Consume();
  }
  if (got->eof) Abort(Unavailable(peer_ + " closed the connection"));
  return true;
}

TcpClient::~TcpClient() {
  std::vector<std::shared_ptr<TcpConnection>> live;
  {
    std::lock_guard lk(mu_);
    for (auto& [raw, weak] : conns_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->Abort(Cancelled("transport destroyed"));
}

Result<std::shared_ptr<Connection>> TcpClient::Connect(const std::string& address) {
  TS_ASSIGN_OR_RETURN(UniqueFd fd, net::Connect(address, options_.connect_timeout_ms));
  auto c = std::make_shared<TcpConnection>(this, std::move(fd), address);
  std::lock_guard lk(mu_);
  for (auto it = conns_.begin(); it != conns_.end();) {
    it = it->second.expired() ? conns_.erase(it) : std::next(it);
  }
  conns_.emplace(c.get(), c);
  epoll_event ev{.events = EPOLLIN, .data = {.ptr = c.get()}};
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c->fd(), &ev) < 0) return Status::FromErrno(errno, "epoll_ctl");
  return std::shared_ptr<Connection>(c);
}

Status TcpClient::WatchFd(int fd, std::atomic<bool>* fired) {
  std::lock_guard lk(mu_);
  auto [it, fresh] = watches_.try_emplace(fd);
  if (!fresh) {
    it->second->fired = fired;
    return Status::Ok();
  }
  it->second = std::make_unique<Watch>(Watch{fd, fired});
  watch_tags_[it->second.get()] = it->second.get();
  epoll_event ev{.events = EPOLLIN | EPOLLET, .data = {.ptr = it->second.get()}};
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
    int err = errno;
    watch_tags_.erase(it->second.get());
    watches_.erase(it);
    return Status::FromErrno(err, "epoll_ctl watch");
  }
  return Status::Ok();
}

void TcpClient::UnwatchFd(int fd) {
  std::lock_guard lk(mu_);
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  watch_tags_.erase(it->second.get());
  watches_.erase(it);
}

Status TcpClient::WaitUntil(const std::function<bool()>& done, uint64_t deadline_ns) {
  std::unique_lock lk(mu_);
  while (!done()) {
    if (NowNanos() >= deadline_ns) return TimedOut("no reply in time");
    if (receiving_) {
      cv_.wait_until(lk, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns)));
      continue;
    }
    receiving_ = true;
    lk.unlock();
    PollOnce(deadline_ns);
    lk.lock();
    receiving_ = false;
    cv_.notify_all();
  }
  return Status::Ok();
}

std::shared_ptr<TcpConnection> TcpClient::SoleAwaitedConnection() {
  // References taken here are dropped after the lock: dropping the last one
  // destroys the connection, whose Abort takes mu_.
  std::vector<std::shared_ptr<TcpConnection>> awaited;
  {
    std::lock_guard lk(mu_);
    if (!watches_.empty()) return nullptr;
    for (auto& [raw, weak] : conns_) {
      std::shared_ptr<TcpConnection> c = weak.lock();  // raw may be gone
      if (c && !c->pending_.empty()) awaited.push_back(std::move(c));
      if (awaited.size() > 1) break;
    }
  }
  return awaited.size() == 1 ? awaited[0] : nullptr;
}

void TcpClient::PollOnce(uint64_t deadline_ns) {
  epoll_event events[32];
  uint64_t spin_until = NowNanos() + wait_.SpinBudgetNanos();
  if (spin_until > NowNanos()) {
    if (std::shared_ptr<TcpConnection> sole = SoleAwaitedConnection()) {
      // One connection owes replies and nothing else is watched: spin on its
      // socket alone, one recv per turn instead of an epoll_wait.
      while (!sole->broken()) {
        if (sole->OnReadable()) return;
        if (NowNanos() >= spin_until) break;
        sched_yield();
      }
    }
  }
  int n;
  for (;;) {
    uint64_t now = NowNanos();
    int timeout = 0;
    if (now >= spin_until) {
      // Block, but wake periodically so a follower whose call completed via
      // Abort on another thread is not stuck behind us.
      timeout = now >= deadline_ns ? 0 : static_cast<int>(std::min<uint64_t>((deadline_ns - now) / 1'000'000 + 1, 50));
    }
    n = epoll_wait(epoll_.get(), events, 32, timeout);
    if (n != 0 || timeout != 0 || now >= deadline_ns) break;
    sched_yield();  // lets a peer woken on this core run now (wait_policy.h)
  }
  for (int i = 0; i < n; ++i) {
    auto* raw = static_cast<TcpConnection*>(events[i].data.ptr);
    std::shared_ptr<TcpConnection> c;
    {
      std::lock_guard lk(mu_);
      if (auto w = watch_tags_.find(events[i].data.ptr); w != watch_tags_.end()) {
        w->second->fired->store(true);
        continue;
      }
      auto it = conns_.find(raw);
      if (it != conns_.end()) c = it->second.lock();
    }
    if (c && !c->broken()) c->OnReadable();
  }
}

}  // namespace

Result<std::unique_ptr<ClientTransport>> NewTcpClientTransport(const ClientOptions& options) {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return Status::FromErrno(errno, "epoll_create1");
  return std::unique_ptr<ClientTransport>(std::make_unique<TcpClient>(options, std::move(ep)));
}

}  // namespace tessera::net
