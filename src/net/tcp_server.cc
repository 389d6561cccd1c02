// TCP implementation of net::Server: one thread, level-triggered epoll, a read
// and a write buffer per connection. Replies to every frame that arrived in one
// read are flushed together, so pipelined requests cost one send.
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <unordered_map>

#include "common/clock.h"
#include "common/log.h"
#include "net/frame_buffer.h"
#include "net/socket.h"
#include "net/transport.h"

namespace tessera::net {
namespace {

// A client that stops reading its replies stops being read from once this much
// is queued for it.
constexpr size_t kMaxQueuedReply = 32u << 20;

struct Conn {
  uint64_t id = 0;  // never reused: a deferred reply finds its connection or none
  UniqueFd fd;
  std::string peer;
  FrameBuffer in;
  proto::Bytes out;
  size_t out_sent = 0;
  uint32_t events = 0;
};

class TcpServer final : public Server {
 public:
  TcpServer(const ServerOptions& o, Handler* h, Listener l, UniqueFd ep, UniqueFd stop)
      : options_(o), handler_(h), listener_(std::move(l)), epoll_(std::move(ep)),
        stop_(std::move(stop)), wait_(o.wait) {}

  const std::string& address() const override { return listener_.address; }
  Status Init();
  Status Run() override;
  void Stop() override {
    uint64_t one = 1;
    ssize_t n = ::write(stop_.get(), &one, sizeof one);
    (void)n;
  }
  Deferred Defer(const proto::FrameHeader& req) override { return {serving_, req}; }
  bool SendDeferred(const Deferred& d, const proto::Bytes& frame) override;

 private:
  void Accept();
  void OnEvent(Conn* c, uint32_t events);
  bool ReadAndServe(Conn* c);  // false: close it
  bool Flush(Conn* c);         // false: close it
  void Watch(Conn* c, uint32_t events);
  void Close(Conn* c, const std::string& why);

  ServerOptions options_;
  Handler* handler_;
  Listener listener_;
  UniqueFd epoll_;
  UniqueFd stop_;
  WaitPolicy wait_;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::unordered_map<uint64_t, Conn*> by_id_;
  uint64_t next_id_ = 1;
  uint64_t serving_ = 0;  // the connection whose request Handle is serving
};

Status TcpServer::Init() {
  for (void* tag : {static_cast<void*>(&listener_), static_cast<void*>(&stop_)}) {
    int fd = tag == &stop_ ? stop_.get() : listener_.fd.get();
    epoll_event ev{.events = EPOLLIN, .data = {.ptr = tag}};
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return Status::FromErrno(errno, "epoll_ctl");
  }
  return Status::Ok();
}

Status TcpServer::Run() {
  epoll_event events[64];
  uint64_t spin_until = 0;
  const uint64_t tick_ns = uint64_t{options_.tick_ms} * 1'000'000;
  uint64_t next_tick = NowNanos() + tick_ns;
  for (;;) {
    uint64_t now = NowNanos();
    if (tick_ns > 0 && now >= next_tick) {
      handler_->OnTick();
      now = NowNanos();
      next_tick = now + tick_ns;
    }
    int timeout = now < spin_until ? 0 : -1;
    if (timeout < 0 && tick_ns > 0) timeout = static_cast<int>((next_tick - now) / 1'000'000) + 1;
    int n = epoll_wait(epoll_.get(), events, 64, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &listener_) {
        Accept();
      } else if (tag == &stop_) {
        return Status::Ok();
      } else {
        OnEvent(static_cast<Conn*>(tag), events[i].events);
      }
    }
    if (n > 0) spin_until = NowNanos() + wait_.SpinBudgetNanos();
  }
}

void TcpServer::Accept() {
  for (;;) {
    int fd = accept4(listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) log::Warn("accept on {}: {}", address(), strerror(errno));
      return;
    }
    UniqueFd owned(fd);
    if (conns_.size() >= options_.max_connections) {
      log::Warn("refusing a connection: already {} open", conns_.size());
      continue;
    }
    SetNoDelay(fd).IgnoreError();  // only latency depends on it
    auto c = std::make_unique<Conn>();
    c->fd = std::move(owned);
    SockAddr peer;
    peer.len = sizeof peer.storage;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer.storage), &peer.len) == 0) {
      c->peer = FormatAddress(peer);
    }
    Conn* raw = c.get();
    raw->id = next_id_++;
    by_id_[raw->id] = raw;
    conns_[fd] = std::move(c);
    Watch(raw, EPOLLIN);
  }
}

void TcpServer::Watch(Conn* c, uint32_t events) {
  if (c->events == events) return;
  epoll_event ev{.events = events, .data = {.ptr = c}};
  int op = c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_.get(), op, c->fd.get(), &ev) < 0) {
    log::Error("epoll_ctl for {}: {}", c->peer, strerror(errno));
  }
  c->events = events;
}

void TcpServer::OnEvent(Conn* c, uint32_t events) {
  if ((events & EPOLLOUT) && !Flush(c)) return Close(c, "write failed");
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!ReadAndServe(c)) return;
    if (!Flush(c)) return Close(c, "write failed");
  }
  size_t queued = c->out.size() - c->out_sent;
  uint32_t want = (queued > 0 ? uint32_t{EPOLLOUT} : 0u) | (queued < kMaxQueuedReply ? uint32_t{EPOLLIN} : 0u);
  Watch(c, want);
}

bool TcpServer::ReadAndServe(Conn* c) {
  Result<FrameBuffer::ReadResult> got = c->in.ReadFrom(c->fd.get());
  if (!got.ok()) {
    Close(c, got.status().ToString());
    return false;
  }
  for (;;) {
    Result<FrameBuffer::Frame> f = c->in.Next();
    if (!f.ok()) {
      log::Warn("closing connection from {}: {}", c->peer, f.status().ToString());
      Close(c, "bad frame");
      return false;
    }
    if (!f->complete) break;
    if (f->header.is_reply()) {
      proto::AppendErrorReply(f->header, ProtocolError("a reply sent to a server"), &c->out);
    } else {
      serving_ = c->id;
      handler_->Handle(f->header, f->body, &c->out);
      serving_ = 0;
    }
    c->in.Consume();
  }
  if (got->eof) {  // orderly shutdown by the peer, after serving what it sent
    Flush(c);
    Close(c, "");
    return false;
  }
  return true;
}

bool TcpServer::Flush(Conn* c) {
  while (c->out_sent < c->out.size()) {
    ssize_t n = ::send(c->fd.get(), c->out.data() + c->out_sent, c->out.size() - c->out_sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    c->out_sent += static_cast<size_t>(n);
  }
  c->out.clear();
  c->out_sent = 0;
  return true;
}

void TcpServer::Close(Conn* c, const std::string& why) {
  if (!why.empty()) log::Debug("connection from {} closed: {}", c->peer, why);
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c->fd.get(), nullptr);
  by_id_.erase(c->id);
  conns_.erase(c->fd.get());
}

bool TcpServer::SendDeferred(const Deferred& d, const proto::Bytes& frame) {
  auto it = by_id_.find(d.conn);
  if (it == by_id_.end()) return false;
  Conn* c = it->second;
  c->out.insert(c->out.end(), frame.begin(), frame.end());
  // Sent when the socket is writable: never from here, which may run inside
  // the serving of this very connection.
  Watch(c, c->events | EPOLLOUT);
  return true;
}

}  // namespace

Result<std::unique_ptr<Server>> ListenTcp(const ServerOptions& options, Handler* handler) {
  TS_ASSIGN_OR_RETURN(Listener l, Listen(options.listen));
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return Status::FromErrno(errno, "epoll_create1");
  UniqueFd stop(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop.valid()) return Status::FromErrno(errno, "eventfd");
  auto s = std::make_unique<TcpServer>(options, handler, std::move(l), std::move(ep), std::move(stop));
  TS_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<Server>(std::move(s));
}

}  // namespace tessera::net
