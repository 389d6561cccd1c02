#include "controller/controller.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/clock.h"
#include "common/log.h"
#include "controller/handlers.h"
#include "controller/repair.h"
#include "ctlplane/embedded_store.h"
#include "ctlplane/etcd_store.h"

namespace tessera::controller {

namespace {

Result<std::unique_ptr<ctlplane::Store>> OpenStore(const Options& o) {
  if (!o.etcd.empty()) {
    TS_ASSIGN_OR_RETURN(auto etcd, ctlplane::EtcdStore::Open({.endpoints = o.etcd}));
    return std::unique_ptr<ctlplane::Store>(std::move(etcd));
  }
  if (::mkdir(o.data_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "create data directory " + o.data_dir);
  }
  struct stat st;
  if (::stat((o.data_dir + "/meta.log").c_str(), &st) == 0) {
    log::Warn("{}/meta.log is the metadata log of an earlier Tessera, which this one does not read; "
              "its regions are not on record here",
              o.data_dir);
  }
  TS_ASSIGN_OR_RETURN(auto embedded, ctlplane::EmbeddedStore::Open({.path = o.data_dir + "/ctlplane.log"}));
  return std::unique_ptr<ctlplane::Store>(std::move(embedded));
}

}  // namespace

class Controller::Service final : public net::Handler {
 public:
  Service(Context* ctx, Controller* controller) : ctx_(*ctx), controller_(*controller) {}
  void Handle(const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) override {
    if (!ctx_.leading) return proto::AppendErrorReply(req, controller_.Standby(), out);
    HandlerFn fn = nullptr;
    switch (static_cast<proto::Op>(req.opcode)) {
      case proto::Op::kM2ctlRegister: fn = HandleRegister; break;
      case proto::Op::kM2ctlHeartbeat: fn = HandleHeartbeat; break;
      case proto::Op::kC2ctlCreateRegion: fn = HandleCreateRegion; break;
      case proto::Op::kC2ctlCloneRegion: fn = HandleCloneRegion; break;
      case proto::Op::kC2ctlRenewLeases: fn = HandleRenewLeases; break;
      case proto::Op::kC2ctlOpenRegion: fn = HandleOpenRegion; break;
      case proto::Op::kC2ctlDeleteRegion: fn = HandleDeleteRegion; break;
      case proto::Op::kC2ctlListRegions: fn = HandleListRegions; break;
      case proto::Op::kC2ctlClusterStatus: fn = HandleClusterStatus; break;
      case proto::Op::kC2ctlWatchMaps: fn = HandleWatchMaps; break;
      default:
        return proto::AppendErrorReply(
            req, InvalidArgument(std::string(proto::OpName(req.opcode)) + " is not served by the controller"), out);
    }
    fn(ctx_, req, body, out);
    AnswerWatches(ctx_);
  }

  void OnTick() override {
    if (ctx_.state.fenced_out()) return controller_.StepDown("a write found its election key gone");
    if (!ctx_.leading) {
      if (!controller_.election_->leading()) return;
      Status s = controller_.TakeOver();
      // A store that takes no writes says so itself, once a minute.
      if (!s.ok() && !ctx_.state.store_failing()) log::Warn("controller: taking over failed, trying again: {}", s.ToString());
      if (!s.ok()) return;
    }
    ctx_.state.ProbeIfDue();
    if (ctx_.members && ctx_.members->ended()) {
      auto again = Members::Follow(*ctx_.store);
      if (!again.ok()) return log::Warn("controller: cannot read memberships again: {}", again.status().ToString());
      ctx_.members = std::move(*again);
    }
    DetectFailures(ctx_);
    FinishRebuild(ctx_);
    // What would write the store waits while it takes no writes (and then
    // starts by itself): a rebuild places fragments before recording them.
    if (!ctx_.state.store_failing()) {
      ScheduleRebuild(ctx_);
      ExpireLeases(ctx_);
    }
    AnswerWatches(ctx_);
  }

 private:
  Context& ctx_;
  Controller& controller_;
};

Result<net::Connection*> Context::ConnectTo(uint64_t id) {
  auto it = conns.find(id);
  if (it != conns.end() && !it->second->broken()) return it->second.get();
  auto node = state.nodes().find(id);
  if (node == state.nodes().end()) return NotFound("memory node " + std::to_string(id) + " is not registered");
  TS_ASSIGN_OR_RETURN(auto c, transport->Connect(node->second.addr));
  conns[id] = c;
  return c.get();
}

std::vector<NodeSlot> Context::LiveNodeSpace() {
  uint64_t now = NowNanos();
  auto allocated = state.AllocatedByNode();
  std::vector<NodeSlot> out;
  for (auto& [id, n] : state.nodes()) {
    if (!NodeAlive(id, now)) continue;
    uint64_t used = allocated[id];
    out.push_back({id, n.capacity > used ? n.capacity - used : 0, n.domain});
  }
  return out;
}

Result<std::unique_ptr<Controller>> Controller::Start(const Options& options) {
  if (options.leader_ttl_s < 1 || options.member_ttl_s < 1) return InvalidArgument("a lease is at least 1 s");
  auto store = OpenStore(options);
  if (!store.ok()) return store.status().With("control-plane store");
  TS_ASSIGN_OR_RETURN(auto transport, net::NewTcpClientTransport({.wait = {.spin_us = 0}}));
  std::unique_ptr<Controller> c(new Controller());
  c->ctx_ = std::make_unique<Context>(options, std::move(*store), std::move(transport));
  c->service_ = std::make_unique<Service>(c->ctx_.get(), c.get());
  TS_ASSIGN_OR_RETURN(c->server_, net::ListenTcp({.listen = options.listen, .wait = {.spin_us = 0}, .tick_ms = options.tick_ms},
                                                  c->service_.get()));
  c->ctx_->server = c->server_.get();
  Controller* self = c.get();
  c->advertised_ = options.advertise.empty() ? c->address() : options.advertise;
  TS_ASSIGN_OR_RETURN(c->election_,
                      ctlplane::Election::Join(*c->ctx_->store,
                                               {.name = ctlplane::keys::ControllerElection(),
                                                .value = c->advertised_,
                                                .ttl_seconds = options.leader_ttl_s,
                                                .on_lost = [self] { self->StepDown("its election lease was lost"); }}));
  if (c->election_->leading()) {
    TS_RETURN_IF_ERROR(c->TakeOver());
  } else {
    log::Info("controller at {} is a standby: {}", c->address(), c->Standby().message());
  }
  return c;
}

Controller::~Controller() {
  // Resigning first: no lease loss can call StepDown on a server being
  // destroyed, and a standby takes over now rather than a lease term later.
  election_.reset();
}

const std::string& Controller::address() const { return server_->address(); }

Status Controller::Run() {
  Status s = server_->Run();
  if (lost_) return NotLeader("controller at " + address() + " stopped: it no longer leads");
  return s;
}

void Controller::Stop() { server_->Stop(); }

void Controller::StepDown(const std::string& why) {
  if (lost_.exchange(true)) return;
  log::Warn("controller at {} steps down: {}", address(), why);
  server_->Stop();
}

Status Controller::Standby() {
  auto leader = ctlplane::Election::Leader(*ctx_->store, ctlplane::keys::ControllerElection());
  std::string where = !leader.ok()                     ? "the store cannot say who leads: " + leader.status().ToString()
                      : !leader->has_value()           ? "no controller leads at the moment"
                      : (*leader)->value == advertised_ ? "it is about to lead"
                                                       : "the leader is at " + (*leader)->value;
  return NotLeader("controller at " + advertised_ + " is a standby; " + where);
}

Status Controller::TakeOver() {
  const uint64_t start = NowNanos();
  // Fenced first: Load makes the cluster's id on a new store.
  ctx_->state.SetFence(election_->Fence());
  TS_RETURN_IF_ERROR(ctx_->state.Load(start));
  if (!ctx_->options.etcd.empty()) {
    TS_ASSIGN_OR_RETURN(ctx_->members, Members::Follow(*ctx_->store));
  }
  ctx_->leading = true;
  log::Info("controller at {} leads cluster {:016x}: {} memory node(s) and {} region(s) on record ({} ms to load)",
            address(), ctx_->state.cluster_id(), ctx_->state.nodes().size(), ctx_->state.regions().size(),
            (NowNanos() - start) / 1'000'000);
  Recover();
  return Status::Ok();
}

void Controller::Recover() {
  std::vector<RegionRecord> unfinished;
  for (auto& [name, r] : ctx_->state.regions()) {
    if (r.state != RegionState::kReady) unfinished.push_back(r);
  }
  for (const RegionRecord& r : unfinished) {
    Status s = FreeRegionOnNodes(*ctx_, r);
    if (s.ok()) s = ctx_->state.DeleteRegion(r.name);
    if (s.ok()) {
      log::Info("finished removing region '{}' that a crash left half-{}", r.name,
                r.state == RegionState::kCreating ? "created" : "deleted");
    } else {
      log::Warn("region '{}' is still half-{}: {}", r.name,
                r.state == RegionState::kCreating ? "created" : "deleted", s.ToString());
    }
  }
}

}  // namespace tessera::controller
