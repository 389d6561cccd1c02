// Controller: the global memory manager (LegoOS's GMM). Memory nodes register
// and heartbeat with it; clients create, open, list and delete regions
// through it; it decides where each region's fragments live and keeps that
// in a MetaStore so a restart loses nothing. It never touches page data.
//
// Ownership: owns its Context (store, state, connections to memory nodes) and
// server. Thread-safety: Run() on one thread; Stop() from any thread or a
// signal handler. All requests are served on the Run() thread.
#pragma once

#include <memory>

#include "common/result.h"
#include "controller/context.h"

namespace tessera::controller {

class Controller {
 public:
  static Result<std::unique_ptr<Controller>> Start(const Options& options);
  ~Controller();

  const std::string& address() const;
  Status Run();
  void Stop();

 private:
  class Service;
  Controller() = default;
  // Finishes what a crash interrupted: regions left "creating" or "deleting".
  void Recover();

  std::unique_ptr<Context> ctx_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<net::Server> server_;
};

}  // namespace tessera::controller
