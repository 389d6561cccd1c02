// EtcdCluster: etcd members run as child processes on free loopback ports,
// each with its own data directory — for tests, and for a local cluster that
// wants the etcd back end. Timeouts are the short ones of design-notes.md
// (heartbeat 20 ms, election 200 ms), so a member's loss costs a fraction of
// a second, not etcd's default ~2 s.
//
// Ownership: owns the processes (stopped with it) and leaves the data
// directories under Options::dir to the caller.
// Thread-safety: not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera::ctlplane {

class EtcdCluster {
 public:
  struct Options {
    std::string dir;          // data directories and logs go under it
    int members = 1;
    std::string host = "127.0.0.1";
    std::string binary = "etcd";  // searched in PATH
    // Where each member runs, if not on free ports of `host`: its own
    // address (then etcd's own ports, 2379 and 2380) and the command prefix
    // that puts it there ("ip netns exec NS" for a host of scripts/netns.sh).
    // One per member; `members` is then their number.
    struct Placement {
      std::string address;
      std::vector<std::string> prefix;
    };
    std::vector<Placement> placements;
  };

  // Starts every member and waits until the cluster answers.
  static Result<std::unique_ptr<EtcdCluster>> Start(Options options);
  ~EtcdCluster();

  // "host:port" of each member's client URL.
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // kill -9 of member i.
  void Kill(int i);

 private:
  explicit EtcdCluster(Options options) : options_(std::move(options)) {}

  const Options options_;
  std::vector<std::string> endpoints_;
  std::vector<pid_t> pids_;
};

}  // namespace tessera::ctlplane
