// `tessera run -- PROGRAM ARGS...`: runs an unmodified program with its heap
// in the pool. With no --controller it starts an embedded local cluster and
// stops it afterwards. It creates a region for the program, serves it through
// an agent (vnode/agent.h) in this process, starts the program with the
// preload shim (src/preload) pointed at the agent, waits, prints a summary of
// what the program's memory did, deletes the region, and exits
// with the program's status (128 + signal if it was killed; 125 if Tessera
// itself could not run it, 126/127 if the program could not be executed or
// found, as env(1) and timeout(1) do).
//
// Thread-safety: one call per process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cmd/signals.h"

namespace tessera::cmd {

struct RunOptions {
  std::vector<std::string> argv;
  uint64_t cache_bytes = 1ull << 30;
  std::string redundancy = "ec:4+2";
  // RegionOptions::layout, or "auto": span for ec:K+M (a fault is one
  // node's round trip), split otherwise.
  std::string layout = "auto";
  std::string controller;          // empty: an embedded cluster
  uint64_t heap_bytes = 8ull << 30; // the program's managed address space
  bool prefetch = true;
  std::string stats_json;          // also write the summary here
  int memnodes = 7;                // embedded cluster
  // The run's regions outlive a `tessera run` killed before it could delete
  // them by this long at most (the controller reclaims them).
  uint32_t lease_ms = 30'000;
};

int RunProgram(const RunOptions& options, SignalWaiter& signals);

}  // namespace tessera::cmd
