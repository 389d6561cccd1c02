// The workload of `tessera demo` (the quick start's main job): create a
// region, write every page with a verifiable pattern through a batched
// IoQueue, read every page back and verify it, report throughput, page
// latency and where the pages live, and delete the region.
#pragma once

#include <cstdint>
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
};

struct WorkloadReport {
  bench::PhaseReport write;
  bench::PhaseReport read;
  uint64_t verified = 0;
  uint64_t page_size = 0;
  std::string redundancy;
  std::map<std::string, uint64_t> pages_per_node;  // page fragments each node holds
};

Result<WorkloadReport> RunWorkload(Client& client, const WorkloadOptions& options);
void PrintWorkloadReport(const WorkloadReport& r, uint32_t depth);

// `tessera demo`: starts a local cluster, runs the workload, prints the
// summary and stops the cluster. Returns the exit code.
int RunDemo(const LocalClusterOptions& cluster, const WorkloadOptions& workload);

}  // namespace tessera::cmd
