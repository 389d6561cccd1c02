// `tessera bench --redundancy none,replicas:3,ec:4+2,...`: what each
// redundancy scheme costs and buys, in one run. For each scheme, on a fresh
// local cluster (so every scheme starts equal): 4 KiB read and write latency
// at depth 1 and throughput at depth 64; bytes stored per byte written; then
// one memory node is kill -9ed and the bench measures reads of pages that
// lost a data fragment (degraded) against the same reads healthy, and the
// rebuild: its rate and the time from the kill to full redundancy.
// Ratios against `none`, measured in the same run, end the report.
#pragma once

#include <string>
#include <vector>

namespace tessera::cmd {

struct RedundancyBenchOptions {
  std::vector<std::string> schemes;
  uint64_t size_bytes = 1ull << 30;  // the region, per scheme
  int memnodes = 12;                 // ec:8+3 is 11 wide, plus a spare to rebuild onto
  double seconds = 2.0;              // per timed phase
  bool json = false;
};

int RunRedundancyBench(const RedundancyBenchOptions& options);

}  // namespace tessera::cmd
