// SignalWaiter: turns SIGINT/SIGTERM into a call of `on_signal` on a thread of
// its own, so daemons shut down cleanly (Ctrl-C, kill) without doing work in a
// signal handler. Construct it first thing in main(), before other threads
// exist: it blocks the signals process-wide so they reach only its thread.
//
// Thread-safety: construct and destroy on the main thread.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace tessera::cmd {

class SignalWaiter {
 public:
  SignalWaiter();
  ~SignalWaiter();
  // Sets what to do on the first signal; a second one exits at once.
  void OnSignal(std::function<void()> on_signal);
  // Drops the action, waiting for it if it is running: call before
  // destroying what it touches.
  void Disarm();

 private:
  sigset_t set_;
  std::mutex mu_;
  std::function<void()> on_signal_;  // guarded by mu_
  std::atomic<bool> signalled_{false};
  std::atomic<bool> armed_{false};
  std::thread thread_;
};

}  // namespace tessera::cmd
