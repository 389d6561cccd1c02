// RebuildJob: remakes lost fragments of one region on their replacement
// nodes, in the background, while clients keep reading and writing.
//
// For each fragment it reads the same slots of the stripe's surviving
// fragments in batches, takes for every slot the newest version that k of
// them agree on, computes the lost share (Reed-Solomon decode, or a copy for
// replicas) and writes it to the replacement with that version. The memory
// node keeps a slot's newest version, so a client write that reaches the
// replacement first (it is in the map, state "rebuilding") is never
// overwritten by the rebuild. Slots never written (version 0 everywhere)
// are skipped: the replacement already reads as zeros.
//
// The job runs on its own threads (kWorkers fragments at a time, so several
// batches are in flight) with its own transport; it shares nothing with the
// controller's thread but atomics (progress) and its result, read once done()
// is true. An optional rate limit paces the bytes it writes.
//
// Thread-safety: construct and read results on the controller's thread;
// progress accessors from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "ec/reed_solomon.h"
#include "net/transport.h"
#include "proto/redundancy.h"

namespace tessera::controller {

struct RebuildTask {
  uint32_t fragment = 0;  // the fragment to remake (share `share` of its stripe)
  int share = 0;
  uint32_t slots = 0;
  std::string target;                // its replacement node's address
  std::vector<std::string> sources;  // address of each share of the stripe; empty: unusable
  std::vector<uint32_t> source_fragments;
};

struct RebuildPlan {
  uint64_t region = 0;
  uint64_t epoch = 0;
  proto::Redundancy redundancy;
  uint32_t slot_size = 0;
  uint64_t rate_limit_bytes_per_s = 0;  // 0: as fast as it goes
  int timeout_ms = 5000;
  std::vector<RebuildTask> tasks;
};

class RebuildJob {
 public:
  // Starts the job's thread.
  static Result<std::unique_ptr<RebuildJob>> Start(RebuildPlan plan);
  // Joins the thread (asking it to stop first).
  ~RebuildJob();

  bool done() const { return done_.load(std::memory_order_acquire); }
  // Valid once done(): which tasks finished, and the first error.
  bool finished(size_t task) const { return finished_[task] != 0; }
  const Status& status() const { return status_; }
  const RebuildPlan& plan() const { return plan_; }

  uint64_t done_bytes() const { return done_bytes_.load(std::memory_order_relaxed); }
  uint64_t total_bytes() const { return total_bytes_; }
  uint64_t bytes_per_second() const;
  // Slots whose surviving shares never agreed on a version (a write in flight
  // whose writer died): left as they were.
  uint64_t unresolved_slots() const { return unresolved_.load(std::memory_order_relaxed); }

 private:
  static constexpr int kWorkers = 4;
  explicit RebuildJob(RebuildPlan plan);
  // One worker: takes tasks until none are left.
  void Work();
  // A worker's connections to memory nodes, by address.
  using Conns = std::map<std::string, std::shared_ptr<net::Connection>>;
  Status RunTask(const RebuildTask& task, Conns& conns);
  Status RebuildBatch(const RebuildTask& task, uint32_t first, uint32_t count, Conns& conns);
  // Sleeps as long as the rate limit asks.
  void Pace();

  RebuildPlan plan_;
  std::unique_ptr<net::ClientTransport> transport_;
  std::unique_ptr<ec::ReedSolomon> rs_;  // null for k = 1
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_task_{0};
  std::atomic<int> working_{kWorkers};
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> done_bytes_{0};
  std::atomic<uint64_t> unresolved_{0};
  uint64_t total_bytes_ = 0;
  uint64_t started_ns_ = 0;
  std::vector<uint8_t> finished_;  // one per task, each written by the worker that ran it
  std::mutex mu_;
  Status status_;  // the first error; guarded by mu_ until done_
};

}  // namespace tessera::controller
