#include "cmd/daemons.h"

#include <spdlog/spdlog.h>

#include "common/units.h"
#include "controller/controller.h"

namespace tessera::cmd {

int RunController(const controller::Options& options, SignalWaiter& signals) {
  auto c = controller::Controller::Start(options);
  if (!c.ok()) {
    spdlog::error("controller: {}", c.status().ToString());
    return 1;
  }
  signals.OnSignal([raw = c->get()] { raw->Stop(); });
  spdlog::info("controller listening on {}", (*c)->address());
  Status s = (*c)->Run();
  if (!s.ok()) spdlog::error("controller: {}", s.ToString());
  return s.ok() ? 0 : 1;
}

int RunMemnode(const memnode::Options& options, SignalWaiter& signals) {
  auto m = memnode::Memnode::Start(options);
  if (!m.ok()) {
    spdlog::error("memnode: {}", m.status().ToString());
    return 1;
  }
  signals.OnSignal([raw = m->get()] { raw->Stop(); });
  spdlog::info("memory node listening on {} with {} (controller {})", (*m)->address(),
               FormatSize(options.capacity_bytes), options.controller.empty() ? "none" : options.controller);
  Status s = (*m)->Run();
  if (!s.ok()) spdlog::error("memnode: {}", s.ToString());
  return s.ok() ? 0 : 1;
}

}  // namespace tessera::cmd
