// LocalCluster: a controller and N memory nodes as child processes of this
// one (the same binary, re-executed with the `controller` and `memnode`
// subcommands), on loopback. `tessera up`, `tessera demo` and `tessera bench`
// use it, and so do the tests that kill daemons.
//
// Ownership: owns the child processes and, unless kept, the data directory;
// the destructor stops everything (SIGTERM, then SIGKILL after 5 s).
// Thread-safety: one thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera::cmd {

struct LocalClusterOptions {
  // Enough for the default redundancy, ec:4+2, plus one to rebuild onto.
  int memnodes = 7;
  uint64_t capacity_bytes = 1ull << 30;  // per memory node
  // "127.0.0.1:0" picks a free port.
  std::string controller_listen = "127.0.0.1:0";
  // Empty: a fresh temporary directory, removed at the end.
  std::string data_dir;
  // Children log to files in the data directory instead of our stderr.
  bool quiet = true;
  uint32_t heartbeat_ms = 500;
  // Memory nodes' busy-poll budget (memnode --spin-us).
  uint32_t memnode_spin_us = 0;
  // The tessera binary to run the daemons with.
  std::string binary = "/proc/self/exe";
  // etcd's client endpoints ("host:port,..."): the controller keeps its state
  // there instead of in its embedded store.
  std::string etcd;
};

class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  ~LocalCluster();

  const std::string& controller_address() const { return controller_address_; }
  const std::string& data_dir() const { return data_dir_; }
  // Process ids: [0] is the controller, then the memory nodes.
  const std::vector<pid_t>& pids() const { return pids_; }
  // The child index (for Kill) of the memory node at `address`; 0 if none.
  size_t MemnodeIndex(const std::string& address) const;
  // Sends SIGTERM to every child, waits, SIGKILLs stragglers.
  void Stop();
  // Sends `signal` to child i (0: the controller) and, for SIGKILL, reaps it.
  void Kill(size_t i, int signal);
  // Starts the controller again on the same address and data directory
  // (after Kill(0, ...)), and waits until every live memory node is back.
  Status RestartController();
  // Returns the pid of a child that exited, or 0 (non-blocking).
  pid_t ReapExited(int* status);

 private:
  LocalCluster() = default;
  Result<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log_name);
  Result<pid_t> SpawnController();
  Status WaitReady(int memnodes);
  // What the daemons' logs say went wrong, for an error message.
  std::string LogTails() const;

  LocalClusterOptions options_;
  std::string data_dir_;
  bool remove_data_dir_ = false;
  std::string controller_address_;
  std::vector<pid_t> pids_;
  std::vector<std::string> memnode_addresses_;  // memory node i is child i+1
};

}  // namespace tessera::cmd
