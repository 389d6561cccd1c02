#include "memnode/memnode.h"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <random>

#include "common/log.h"
#include "memnode/handlers.h"
#include "net/rpc.h"
#include "proto/m2ctl.h"

namespace tessera::memnode {

class Memnode::Service final : public net::Handler {
 public:
  explicit Service(FragmentStore* store) : store_(*store) {}
  void Handle(const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) override {
    switch (static_cast<proto::Op>(req.opcode)) {
      case proto::Op::kC2mReadPages: return HandleReadPages(store_, req, body, out);
      case proto::Op::kC2mWritePages: return HandleWritePages(store_, req, body, out);
      case proto::Op::kCtl2mAllocFragments: return HandleAllocFragments(store_, req, body, out);
      case proto::Op::kCtl2mCloneFragments: return HandleCloneFragments(store_, req, body, out);
      case proto::Op::kCtl2mFreeRegion: return HandleFreeRegion(store_, req, body, out);
      case proto::Op::kCtl2mSetEpoch: return HandleSetEpoch(store_, req, body, out);
      default:
        return proto::AppendErrorReply(
            req, InvalidArgument(std::string(proto::OpName(req.opcode)) + " is not served by a memory node"), out);
    }
  }

 private:
  FragmentStore& store_;
};

uint64_t CurrentRssBytes() {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

Memnode::Memnode(const Options& options)
    : options_(options), store_(options.capacity_bytes, UndoOptions{.max_bytes = options.undo_bytes, .orphan_ms = options.orphan_ms}), service_(std::make_unique<Service>(&store_)) {}

Result<std::unique_ptr<Memnode>> Memnode::Start(const Options& options) {
  std::unique_ptr<Memnode> m(new Memnode(options));
  net::ServerOptions so{.listen = options.listen, .wait = options.wait};
  TS_ASSIGN_OR_RETURN(m->server_, net::ListenTcp(so, m->service_.get()));
  if (!options.controller.empty()) {
    TS_ASSIGN_OR_RETURN(m->controller_transport_, net::NewTcpClientTransport({.wait = {.spin_us = 0}}));
    m->heartbeat_ = std::thread([raw = m.get()] { raw->HeartbeatLoop(); });
  }
  return m;
}

Memnode::~Memnode() {
  Stop();
  if (heartbeat_.joinable()) heartbeat_.join();
}

Status Memnode::Run() { return server_->Run(); }

void Memnode::Stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (server_) server_->Stop();  // null when Start failed to listen
}

void Memnode::HeartbeatLoop() {
  const std::string advertise = options_.advertise.empty() ? address() : options_.advertise;
  const uint64_t incarnation = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  uint64_t node_id = 0;
  bool registered = false;
  Status last_error;
  net::ClientTransport& transport = *controller_transport_;
  std::shared_ptr<net::Connection> conn;
  for (;;) {
    Status s;
    if (!conn || conn->broken()) {
      auto c = transport.Connect(options_.controller);
      if (c.ok()) conn = *c; else s = c.status();
    }
    if (s.ok() && !registered) {
      proto::m2ctl::Register reg{node_id,          incarnation,          advertise,
                                 store_.capacity_bytes(), store_.used_bytes(), options_.domain};
      auto r = net::Call(transport, *conn, reg, 2000);
      if (r.ok()) {
        if (node_id != r->node_id) log::Info("registered with controller {} as node {}", options_.controller, r->node_id);
        node_id = r->node_id;
        registered = true;
      }
      s = r.status();
    } else if (s.ok()) {
      proto::m2ctl::Heartbeat hb{node_id, incarnation, store_.used_bytes(), CurrentRssBytes()};
      auto r = net::Call(transport, *conn, hb, 2000);
      if (r.ok() && !r->known) registered = false;
      s = r.status();
    }
    if (!s.ok() && s.ToString() != last_error.ToString()) {
      log::Warn("controller {}: {} (retrying every {} ms)", options_.controller, s.ToString(), options_.heartbeat_ms);
    }
    last_error = s;
    std::unique_lock lk(mu_);
    if (cv_.wait_for(lk, std::chrono::milliseconds(registered ? options_.heartbeat_ms : 100),
                     [&] { return stopping_; })) {
      return;
    }
  }
}

}  // namespace tessera::memnode
