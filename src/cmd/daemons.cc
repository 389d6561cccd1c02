#include "cmd/daemons.h"

#include <fstream>
#include <string>

#include "common/log.h"
#include "common/units.h"
#include "controller/controller.h"

namespace tessera::cmd {

int RunController(const controller::Options& options, SignalWaiter& signals) {
  auto c = controller::Controller::Start(options);
  if (!c.ok()) {
    log::Error("controller: {}", c.status().ToString());
    return 1;
  }
  signals.OnSignal([raw = c->get()] { raw->Stop(); });
  log::Info("controller listening on {}", (*c)->address());
  Status s = (*c)->Run();
  signals.Disarm();  // a signal's Stop() must not outlive the controller
  if (!s.ok()) log::Error("controller: {}", s.ToString());
  return s.ok() ? 0 : 1;
}

namespace {

// MemAvailable from /proc/meminfo, in bytes; 0 if unknown.
uint64_t MemAvailableBytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

}  // namespace

int RunMemnode(const memnode::Options& options, SignalWaiter& signals) {
  uint64_t available = MemAvailableBytes();
  if (available != 0 && options.capacity_bytes > available) {
    // Pages are populated on first write, so this only bites when the node
    // fills up: then the kernel's OOM killer, not Tessera, says no.
    log::Warn("--capacity {} exceeds the {} this machine has available; the node may be killed when it fills",
              FormatSize(options.capacity_bytes), FormatSize(available));
  }
  auto m = memnode::Memnode::Start(options);
  if (!m.ok()) {
    log::Error("memnode: {}", m.status().ToString());
    return 1;
  }
  signals.OnSignal([raw = m->get()] { raw->Stop(); });
  log::Info("memory node listening on {} with {} (controller {})", (*m)->address(),
            FormatSize(options.capacity_bytes), options.controller.empty() ? "none" : options.controller);
  Status s = (*m)->Run();
  signals.Disarm();  // a signal's Stop() must not outlive the memory node
  if (!s.ok()) log::Error("memnode: {}", s.ToString());
  return s.ok() ? 0 : 1;
}

}  // namespace tessera::cmd
