// WaitPolicy: how a thread waits for bytes — spin, then block.
//
// On this class of machine waking a sleeping thread on the other core costs
// ~35-40 us while a busy-polled round trip is ~8.5 us (shared/baselines.md),
// so a waiter first polls without sleeping for up to spin_us, then blocks.
// Spinning only pays while every spinner has a core of its own: when more
// threads are runnable than there are cores, a spinner steals the very core
// its peer needs, so the policy stops spinning. It learns that from
// /proc/loadavg's runnable count, sampled at most every 20 ms.
// Spinners call sched_yield() between polls: when the peer they wait for is
// woken on their own core, it runs at once instead of waiting for a tick.
//
// Thread-safety: SpinBudget() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace tessera::net {

struct WaitOptions {
  // How long to poll before blocking. 0 never spins.
  uint32_t spin_us = 50;
  // Ignore CPU pressure and always spin up to spin_us (benchmarks that
  // compare polling modes set this on both sides).
  bool spin_under_pressure = false;
};

// Runnable threads on the machine right now (-1: unknown). The default reads
// /proc/loadavg; tests pass a fake.
using RunnableProbe = int (*)();
int RunnableTasksFromLoadavg();

class WaitPolicy {
 public:
  explicit WaitPolicy(WaitOptions options, RunnableProbe probe = RunnableTasksFromLoadavg,
                      int cpus = 0 /* 0: the machine's */);

  // Nanoseconds to spin before blocking, now: 0 when spinning is off or the
  // machine is oversubscribed.
  uint64_t SpinBudgetNanos();

 private:
  bool Oversubscribed();

  WaitOptions options_;
  RunnableProbe probe_;
  int cpus_;
  std::atomic<uint64_t> next_sample_ns_{0};
  std::atomic<bool> oversubscribed_{false};
};

}  // namespace tessera::net
