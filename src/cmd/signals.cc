#include "cmd/signals.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>

namespace tessera::cmd {

SignalWaiter::SignalWaiter() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGUSR1);  // our own wake-up at destruction
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      if (signalled_.exchange(true)) _exit(130);
      while (!armed_.load()) usleep(1000);
      std::lock_guard lk(mu_);
      if (on_signal_) on_signal_();
    }
  });
}

void SignalWaiter::OnSignal(std::function<void()> on_signal) {
  {
    std::lock_guard lk(mu_);
    on_signal_ = std::move(on_signal);
  }
  armed_.store(true);
}

void SignalWaiter::Disarm() {
  std::lock_guard lk(mu_);
  on_signal_ = nullptr;
}

SignalWaiter::~SignalWaiter() {
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

}  // namespace tessera::cmd
