#include "controller/controller.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/clock.h"
#include "common/log.h"
#include "controller/handlers.h"
#include "controller/repair.h"

namespace tessera::controller {

class Controller::Service final : public net::Handler {
 public:
  explicit Service(Context* ctx) : ctx_(*ctx) {}
  void Handle(const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out) override {
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
      default:
        return proto::AppendErrorReply(
            req, InvalidArgument(std::string(proto::OpName(req.opcode)) + " is not served by the controller"), out);
    }
    fn(ctx_, req, body, out);
  }

  void OnTick() override {
    DetectFailures(ctx_);
    FinishRebuild(ctx_);
    ScheduleRebuild(ctx_);
    ExpireLeases(ctx_);
  }

 private:
  Context& ctx_;
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
    if (!Alive(n, now)) continue;
    uint64_t used = allocated[id];
    out.push_back({id, n.capacity > used ? n.capacity - used : 0, n.domain});
  }
  return out;
}

Result<std::unique_ptr<Controller>> Controller::Start(const Options& options) {
  if (::mkdir(options.data_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "create data directory " + options.data_dir);
  }
  TS_ASSIGN_OR_RETURN(auto store, OpenFileMetaStore(options.data_dir + "/meta.log"));
  TS_ASSIGN_OR_RETURN(auto transport, net::NewTcpClientTransport({.wait = {.spin_us = 0}}));
  std::unique_ptr<Controller> c(new Controller());
  c->ctx_ = std::make_unique<Context>(options, std::move(store), std::move(transport));
  TS_RETURN_IF_ERROR(c->ctx_->state.Load(NowNanos()));
  c->service_ = std::make_unique<Service>(c->ctx_.get());
  TS_ASSIGN_OR_RETURN(c->server_, net::ListenTcp({.listen = options.listen, .wait = {.spin_us = 0}, .tick_ms = options.tick_ms},
                                                  c->service_.get()));
  log::Info("controller at {}: {} memory node(s) and {} region(s) on record in {}", c->address(),
            c->ctx_->state.nodes().size(), c->ctx_->state.regions().size(), options.data_dir);
  c->Recover();
  return c;
}

Controller::~Controller() = default;

const std::string& Controller::address() const { return server_->address(); }

Status Controller::Run() { return server_->Run(); }

void Controller::Stop() { server_->Stop(); }

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
