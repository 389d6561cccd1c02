// The workload of `tessera demo` (the quick start's main job): create a
// region, write every page with a verifiable pattern through a batched
// IoQueue, read every page back and verify it; then, if asked, lose a memory
// node (kill -9), read and verify everything again while degraded, wait for
// the controller to rebuild, and verify once more; report throughput, page
// latency, the rebuild and where the pages live, and delete the region.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "bench/page_driver.h"
#include "cmd/local_cluster.h"
#include "tessera/client.h"

namespace tessera::cmd {

struct WorkloadOptions {
  std::string region = "demo";
  uint64_t size_bytes = 1ull << 30;
  std::string redundancy = "ec:4+2";
  uint32_t depth = 128;
  uint32_t batch = 32;
  // Kills a memory node holding part of the region; empty: no loss phase.
  std::function<Status()> lose_node;
  int rebuild_timeout_s = 120;
};

struct WorkloadReport {
  bench::PhaseReport write;
  bench::PhaseReport read;
  uint64_t verified = 0;
  // The loss phase, if run.
  bool lost_node = false;
  bench::PhaseReport degraded_read;
  double rebuild_seconds = 0;    // from the kill to healthy again
  uint64_t rebuilt_bytes = 0;
  uint64_t verified_after_rebuild = 0;
  uint64_t page_size = 0;
  std::string redundancy;
  std::map<std::string, uint64_t> pages_per_node;  // page fragments each node holds
};

Result<WorkloadReport> RunWorkload(Client& client, const WorkloadOptions& options);
void PrintWorkloadReport(const WorkloadReport& r, uint32_t depth);

// `tessera demo`: starts a local cluster, runs the workload (with the loss
// phase on the cluster's first memory node if `lose_a_node`), prints the
// summary and stops the cluster. Returns the exit code.
int RunDemo(const LocalClusterOptions& cluster, const WorkloadOptions& workload, bool lose_a_node);

}  // namespace tessera::cmd
