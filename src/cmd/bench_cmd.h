// `tessera bench`: 4 KiB page reads and writes against a cluster at depth 1,
// 8 and 64, and in the same run the baselines — raw TCP ping-pong and
// memcached GETs at the same connections and depth — with Tessera/baseline
// ratios. Starts and stops its own local cluster unless given --controller.
#pragma once

#include <string>

namespace tessera::cmd {

struct BenchOptions {
  std::string controller;  // empty: start a local cluster
  int memnodes = 3;
  uint32_t memnode_spin_us = 0;
  uint32_t client_spin_us = 50;
  bool quick = false;
  bool json = false;
};

int RunBench(const BenchOptions& options);

}  // namespace tessera::cmd
