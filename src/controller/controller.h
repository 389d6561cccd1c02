// Controller: the global memory manager (LegoOS's GMM). Memory nodes register
// and heartbeat with it; clients create, open, list and delete regions
// through it; it decides where each region's fragments live and keeps that
// in the control-plane store so a restart loses nothing. It never touches
// page data.
//
// High availability: every controller of a cluster runs for leader
// (ctlplane/election.h) on the cluster's store. The leader loads the state and
// serves; the others are standbys that answer every request with NotLeader
// (clients and memory nodes then try the next controller they know) and take
// over, loading the state afresh, once the leader's election lease has gone.
// A controller that loses the leadership stops: Run() returns NotLeader, and
// its supervisor starts it again as a standby.
//
// Ownership: owns its Context (store, state, connections to memory nodes),
// its candidacy and its server. Thread-safety: Run() on one thread; Stop()
// from any thread or a signal handler. All requests are served on the Run()
// thread.
#pragma once

#include <atomic>
#include <memory>

#include "common/result.h"
#include "controller/context.h"
#include "ctlplane/election.h"

namespace tessera::controller {

class Controller {
 public:
  static Result<std::unique_ptr<Controller>> Start(const Options& options);
  ~Controller();

  const std::string& address() const;
  bool leading() const { return ctx_->leading; }  // on the Run() thread, or before Run()
  // Serves until Stop(), or until this controller loses the leadership
  // (NotLeader).
  Status Run();
  void Stop();

 private:
  class Service;
  Controller() = default;
  // Becomes the leader's state: loads it, fences its writes, recovers.
  Status TakeOver();
  // Finishes what a crash interrupted: regions left "creating" or "deleting".
  void Recover();
  // Stops serving because another controller may lead now.
  void StepDown(const std::string& why);
  // What a standby answers: NotLeader, saying who leads.
  Status Standby();

  std::unique_ptr<Context> ctx_;
  std::unique_ptr<ctlplane::Election> election_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<net::Server> server_;
  std::string advertised_;  // the address the election publishes
  std::atomic<bool> lost_{false};
};

}  // namespace tessera::controller
