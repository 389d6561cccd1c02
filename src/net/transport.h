// The transport interface: what the rest of Tessera needs from a network, so
// that a second back end (UCX for shared memory and RDMA) can sit beside TCP.
//
// Server side: a Server owns a listening endpoint and one thread's worth of
// event loop; every well-framed request goes to a Handler, which appends
// exactly one reply frame. Servers never die because of what a peer sends: a
// frame that cannot be delimited closes that connection, a body that does not
// decode is answered with an error reply.
//
// Client side: a ClientTransport makes Connections and is the progress engine
// for all of them. Send() queues a request and registers a callback;
// WaitUntil() drives receiving on the calling thread until the caller's
// predicate holds — whichever thread waits does the receiving (leader/
// follower), so a single-threaded caller pays no thread hand-off.
//
// Thread-safety: Server::Stop and everything on ClientTransport and
// Connection are thread-safe. Reply callbacks run on an arbitrary waiting
// thread, outside the transport's locks, exactly once each; they must be
// short, must not call WaitUntil, and must publish what they change through
// atomics (the predicate may read it from another thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "net/wait_policy.h"
#include "proto/frame.h"

namespace tessera::net {

class Handler {
 public:
  virtual ~Handler() = default;
  // Called on the server's thread for each request frame. Appends one reply
  // frame for `req` to `out` (proto::AppendReply / AppendErrorReply).
  virtual void Handle(const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) = 0;
  // Called on the server's thread every ServerOptions::tick_ms (if set),
  // between requests: where periodic work that shares the handler's state
  // runs without a lock.
  virtual void OnTick() {}
};

// A request whose reply the handler gives later (a long poll): which
// connection it came on and its header.
struct Deferred {
  uint64_t conn = 0;
  proto::FrameHeader req;
};

class Server {
 public:
  virtual ~Server() = default;
  // Server thread, inside Handler::Handle only: the request being handled
  // will be answered later, through SendDeferred; Handle appends no reply.
  virtual Deferred Defer(const proto::FrameHeader& req) = 0;
  // Server thread only: queues `frame` (the reply to d.req, made with
  // proto::AppendReply / AppendErrorReply) on d's connection. False if that
  // connection has closed since: the reply has nobody to go to.
  virtual bool SendDeferred(const Deferred& d, const proto::Bytes& frame) = 0;
  // The address clients connect to, with the real port.
  virtual const std::string& address() const = 0;
  // Serves until Stop(). Call from one thread.
  virtual Status Run() = 0;
  // Makes Run() return soon. Async-signal-safe.
  virtual void Stop() = 0;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  WaitOptions wait;
  uint32_t max_connections = 1024;
  uint32_t tick_ms = 0;  // 0: no Handler::OnTick
};

Result<std::unique_ptr<Server>> ListenTcp(const ServerOptions& options, Handler* handler);

// Called with the reply, or with a non-ok status and an empty body when the
// connection failed or was aborted before the reply came.
using ReplyCallback =
    std::function<void(const Status& status, const proto::FrameHeader& reply, proto::ByteSpan body)>;

class Connection {
 public:
  virtual ~Connection() = default;
  virtual const std::string& peer() const = 0;
  // Sends one request. The callback runs exactly once (possibly before Send
  // returns, if the connection breaks). A non-ok return means the request was
  // not sent and the callback will not run.
  virtual Status Send(proto::Op op, proto::ByteSpan body, ReplyCallback callback) = 0;
  // Fails every outstanding call with `why` and closes the connection.
  virtual void Abort(const Status& why) = 0;
  virtual bool broken() const = 0;
  // True if the peer has closed its end (checked now, with a system call):
  // an idle connection to a peer that restarted looks healthy until used.
  virtual bool PeerHungUp() = 0;
  // When bytes last arrived from the peer (or the connection was made), on
  // the NowNanos clock: a peer that has left requests unanswered and sent
  // nothing for long is silent — stopped, or its link cut — not just busy.
  virtual uint64_t last_heard_ns() const = 0;
};

class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  virtual Result<std::shared_ptr<Connection>> Connect(const std::string& address) = 0;
  // Receives and runs callbacks until done() is true (checked under the
  // transport's lock after each batch) or deadline_ns (NowNanos clock) passes.
  virtual Status WaitUntil(const std::function<bool()>& done, uint64_t deadline_ns) = 0;
  // Watches `fd` until UnwatchFd: each time it becomes readable (edge
  // triggered: new data, not data left unread), whichever thread is receiving
  // sets *fired and every waiter checks its predicate again (the fd is not
  // read). Watching again only points the watch at `fired`: no system call.
  // For a thread that serves another event source while it drives I/O
  // (vNode's userfaultfd), reading that source before each wait. `fired`
  // must outlive the watch.
  virtual Status WatchFd(int fd, std::atomic<bool>* fired) = 0;
  virtual void UnwatchFd(int fd) = 0;
};

struct ClientOptions {
  WaitOptions wait;
  int connect_timeout_ms = 2000;
  // How long Send may wait for room in the socket before failing the call.
  int send_timeout_ms = 10000;
};

Result<std::unique_ptr<ClientTransport>> NewTcpClientTransport(const ClientOptions& options);

}  // namespace tessera::net
