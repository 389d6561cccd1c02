#include "memnode/memnode.h"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <utility>

#include "common/log.h"
#include "common/units.h"
#include "ctlplane/etcd_store.h"
#include "memnode/handlers.h"
#include "net/rpc.h"
#include "proto/m2ctl.h"

namespace tessera::memnode {

class Memnode::Service final : public net::Handler {
 public:
  Service(FragmentStore* store, Memnode* node) : store_(*store), node_(*node) {}
  void Handle(const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) override {
    if (node_.Fenced()) {
      return proto::AppendErrorReply(
          req, Unavailable("memory node fenced: its membership lease is unconfirmed or expired"), out);
    }
    switch (static_cast<proto::Op>(req.opcode)) {
      case proto::Op::kC2mReadPages: return HandleReadPages(store_, req, body, out);
      case proto::Op::kC2mWritePages: return HandleWritePages(store_, req, body, out);
      case proto::Op::kCtl2mAllocFragments: return HandleAllocFragments(store_, req, body, out);
      case proto::Op::kCtl2mCloneFragments: return HandleCloneFragments(store_, req, body, out);
      case proto::Op::kCtl2mFreeRegion: return HandleFreeRegion(store_, req, body, out);
      case proto::Op::kCtl2mFreeFragments: return HandleFreeFragments(store_, req, body, out);
      case proto::Op::kCtl2mSetEpoch: return HandleSetEpoch(store_, req, body, out);
      default:
        return proto::AppendErrorReply(
            req, InvalidArgument(std::string(proto::OpName(req.opcode)) + " is not served by a memory node"), out);
    }
  }

  void OnTick() override { node_.DropIfAsked(); }

 private:
  FragmentStore& store_;
  Memnode& node_;
};

namespace {

uint64_t NewIncarnation() {
  return std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
}

}  // namespace

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
    : options_(options),
      store_(options.capacity_bytes, UndoOptions{.max_bytes = options.undo_bytes, .orphan_ms = options.orphan_ms},
             VersionLimit{.max_ahead_us = uint64_t{options.max_clock_ahead_ms} * 1000}),
      service_(std::make_unique<Service>(&store_, this)) {}

Result<std::unique_ptr<Memnode>> Memnode::Start(const Options& options) {
  std::unique_ptr<Memnode> m(new Memnode(options));
  // The server thread drops an expired membership's fragments on a tick.
  net::ServerOptions so{.listen = options.listen, .wait = options.wait, .tick_ms = 100};
  TS_ASSIGN_OR_RETURN(m->server_, net::ListenTcp(so, m->service_.get()));
  if (!options.controller.empty()) {
    TS_ASSIGN_OR_RETURN(auto controllers, net::ControllerList::Parse(options.controller));
    m->controllers_.emplace(std::move(controllers));
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

bool Memnode::KeepMembership(const proto::m2ctl::RegisterReply& reg, uint64_t* incarnation) {
  if (reg.etcd.empty()) return true;  // membership by heartbeats
  lease_mode_ = true;
  std::unique_lock lk(membership_mu_);
  if (membership_ && !membership_->expired()) return true;
  if (membership_) {
    // Dead to the cluster: what this node holds has been given up (rebuilt
    // elsewhere). It drops it all and comes back empty, a new incarnation.
    lk.unlock();
    StartAfresh(incarnation);
    return false;
  }
  lk.unlock();
  std::vector<std::string> endpoints;
  for (size_t start = 0, comma = 0; comma != std::string::npos; start = comma + 1) {
    comma = reg.etcd.find(',', start);
    endpoints.push_back(reg.etcd.substr(start, comma == std::string::npos ? comma : comma - start));
  }
  const int64_t ttl_s = reg.lease_ttl_s;
  auto etcd = ctlplane::EtcdStore::Open({.endpoints = endpoints, .timeout_ms = std::max<int64_t>(300, ttl_s * 1000 / 3)});
  Result<std::unique_ptr<Membership>> m =
      etcd.ok() ? Membership::Join(std::move(*etcd), {.node_id = reg.node_id, .incarnation = *incarnation, .ttl_s = ttl_s})
                : etcd.status();
  if (!m.ok()) {
    log::Warn("memory node {}: cannot hold its membership in etcd at {}: {} (serving no page I/O until it can)",
              reg.node_id, reg.etcd, m.status().ToString());
    return true;
  }
  lk.lock();
  membership_ = std::move(*m);
  log::Info("memory node {}: membership held in etcd under a {} s lease", reg.node_id, ttl_s);
  return true;
}

void Memnode::StartAfresh(uint64_t* incarnation) {
  drop_asked_ = true;
  {
    std::unique_lock wait(mu_);
    cv_.wait(wait, [&] { return !drop_asked_.load() || stopping_; });
  }
  *incarnation = NewIncarnation();
  std::lock_guard lk(membership_mu_);
  membership_.reset();
}

bool Memnode::Fenced() {
  if (!lease_mode_) return false;
  std::lock_guard lk(membership_mu_);
  return membership_ == nullptr || membership_->fenced();
}

void Memnode::DropIfAsked() {
  if (!drop_asked_.load()) return;
  const uint64_t freed = store_.FreeAll();
  log::Warn("memory node: dropped every fragment ({}): the cluster no longer counts on what it held", FormatSize(freed));
  {
    std::lock_guard lk(mu_);
    drop_asked_ = false;
  }
  cv_.notify_all();
}

void Memnode::HeartbeatLoop() {
  const std::string advertise = options_.advertise.empty() ? address() : options_.advertise;
  uint64_t incarnation = NewIncarnation();
  uint64_t node_id = 0;
  uint64_t cluster_id = 0;
  bool registered = false;
  std::optional<proto::m2ctl::RegisterReply> reply;  // the last registration's
  std::map<std::string, std::string> last_error;  // by controller: log each change once
  net::ClientTransport& transport = *controller_transport_;
  std::shared_ptr<net::Connection> conn;
  std::string conn_addr;
  for (;;) {
    Status s;
    const std::string addr = controllers_->current();
    if (!conn || conn->broken() || conn_addr != addr) {
      conn.reset();
      auto c = transport.Connect(addr);
      if (c.ok()) conn = *c; else s = c.status();
      conn_addr = addr;
    }
    if (s.ok() && !registered) {
      proto::m2ctl::Register reg{node_id,          incarnation,          advertise,
                                 store_.capacity_bytes(), store_.used_bytes(), options_.domain, cluster_id};
      auto r = net::Call(transport, *conn, reg, 2000);
      if (r.ok()) {
        if (node_id != r->node_id || cluster_id != r->cluster_id) {
          log::Info("registered with controller {} as node {} of cluster {:016x}", addr, r->node_id, r->cluster_id);
        }
        node_id = r->node_id;
        cluster_id = r->cluster_id;
        registered = true;
        reply = *r;
      }
      s = r.status();
      if (s.code() == Code::kWrongCluster) {
        // The cluster this node belonged to is gone from the controller's
        // store: what it holds is no one's now. It comes back empty.
        log::Warn("{}; dropping every fragment this node holds ({}) and joining as a new node", s.message(),
                  FormatSize(store_.used_bytes()));
        StartAfresh(&incarnation);
        node_id = cluster_id = 0;
        reply.reset();
        s = Status::Ok();
        continue;
      }
    } else if (s.ok()) {
      proto::m2ctl::Heartbeat hb{node_id, incarnation, store_.used_bytes(), CurrentRssBytes(), cluster_id};
      auto r = net::Call(transport, *conn, hb, 2000);
      if (r.ok() && !r->known) registered = false;
      s = r.status();
    }
    if (!s.ok()) {
      // Down, a standby, or gone quiet: the next controller, shortly.
      if (std::exchange(last_error[addr], s.ToString()) != s.ToString()) {
        log::Warn("controller {}: {} (trying the next)", addr, s.ToString());
      }
      conn.reset();
      controllers_->Next(addr);
    }
    if (s.ok()) last_error.erase(addr);
    if (registered && reply && !KeepMembership(*reply, &incarnation)) registered = false;
    std::unique_lock lk(mu_);
    if (cv_.wait_for(lk, std::chrono::milliseconds(registered && s.ok() ? options_.heartbeat_ms : 100),
                     [&] { return stopping_; })) {
      return;
    }
  }
}

}  // namespace tessera::memnode
