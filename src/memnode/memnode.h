// Memnode: a memory node daemon — LegoOS's memory monitor in user space. It
// owns at most Options::capacity_bytes of DRAM in a FragmentStore, serves the
// c2m (page reads and writes) and ctl2m (allocation) requests on one server
// thread, and keeps itself registered with the controller from a second
// thread (registration and heartbeats carry its usage and RSS).
//
// Ownership: a Memnode owns its store, server and heartbeat thread.
// Thread-safety: construct and Run() from one thread; Stop() from any thread
// or a signal handler.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "memnode/fragment_store.h"
#include "memnode/membership.h"
#include "proto/m2ctl.h"
#include "net/controller_list.h"
#include "net/transport.h"

namespace tessera::memnode {

struct Options {
  std::string listen = "127.0.0.1:0";
  // The address given to the controller; empty: the address actually bound.
  std::string advertise;
  // The controllers, "host:port[,host:port...]": registration and heartbeats
  // go to the one that leads, found by trying each in turn. Empty: run
  // without a controller (tests).
  std::string controller;
  uint64_t capacity_bytes = 1ull << 30;
  // Failure domain label: no stripe puts two fragments in one domain while
  // there are enough domains.
  std::string domain;
  uint32_t heartbeat_ms = 500;
  // The write hole's undo copies (undo_log.h): at most this many bytes, and
  // a write unfinished for orphan_ms may be rolled back by another writer.
  uint64_t undo_bytes = 256ull << 20;
  uint32_t orphan_ms = 1000;
  // A write whose version (its writer's clock, proto/c2m.h) is further ahead
  // of this node's clock is refused (version_limit.h).
  uint32_t max_clock_ahead_ms = 5000;
  // A memory node sleeps in epoll_wait by default: on a box with more daemons
  // than cores (a local cluster) its spinning steals the client's core
  // (doc/design.md has the figures). With a core of its own, spin_us = 50 cuts
  // a round trip by ~10 us.
  net::WaitOptions wait{.spin_us = 0};
};

class Memnode {
 public:
  static Result<std::unique_ptr<Memnode>> Start(const Options& options);
  ~Memnode();

  const std::string& address() const { return server_->address(); }
  // Serves until Stop(). Returns the server's exit status.
  Status Run();
  void Stop();

  FragmentStore& store() { return store_; }

 private:
  class Service;
  explicit Memnode(const Options& options);
  void HeartbeatLoop();
  // Membership by lease (membership.h), when the controller's reply names
  // the cluster's etcd: joins, or after an expiry drops every fragment and
  // asks for a new incarnation. False: register again first.
  bool KeepMembership(const proto::m2ctl::RegisterReply& reg, uint64_t* incarnation);
  // Drops every fragment (on the server thread, DropIfAsked), leaves any
  // membership and takes a new incarnation: the node is empty and new.
  void StartAfresh(uint64_t* incarnation);
  // A node whose lease is unconfirmed, expired or not yet held serves no
  // page I/O. Any thread.
  bool Fenced();
  // On the server thread's tick: frees every fragment if the heartbeat
  // thread asked (after an expiry). Requests meanwhile are refused: the node
  // is fenced until it has registered again.
  void DropIfAsked();

  Options options_;
  FragmentStore store_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<net::Server> server_;
  std::optional<net::ControllerList> controllers_;
  std::atomic<bool> lease_mode_{false};  // the cluster keeps membership in etcd
  std::mutex membership_mu_;             // guards membership_
  std::unique_ptr<Membership> membership_;
  std::atomic<bool> drop_asked_{false};
  std::unique_ptr<net::ClientTransport> controller_transport_;
  std::thread heartbeat_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
};

// Resident set size of this process, from /proc/self/statm.
uint64_t CurrentRssBytes();

}  // namespace tessera::memnode
