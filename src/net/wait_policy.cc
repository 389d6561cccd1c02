#include "net/wait_policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "common/clock.h"

namespace tessera::net {
namespace {

constexpr uint64_t kSampleEveryNs = 20'000'000;

}  // namespace

// The 4th field of /proc/loadavg: "0.00 0.01 0.05 3/123 4567".
int RunnableTasksFromLoadavg() {
  int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // Parsed by hand: scanf reads the locale, which in a vNode program lives in
  // the program's (paged) heap, out of bounds for the pager's thread.
  const char* p = buf;
  for (int field = 0; field < 3; ++field) {
    while (*p != '\0' && *p != ' ') ++p;
    while (*p == ' ') ++p;
  }
  if (*p < '0' || *p > '9') return -1;
  int running = 0;
  for (; *p >= '0' && *p <= '9'; ++p) running = running * 10 + (*p - '0');
  return *p == '/' ? running : -1;
}

WaitPolicy::WaitPolicy(WaitOptions options, RunnableProbe probe, int cpus)
    : options_(options), probe_(probe), cpus_(cpus > 0 ? cpus : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))) {}

uint64_t WaitPolicy::SpinBudgetNanos() {
  if (options_.spin_us == 0) return 0;
  if (!options_.spin_under_pressure && Oversubscribed()) return 0;
  return static_cast<uint64_t>(options_.spin_us) * 1000;
}

bool WaitPolicy::Oversubscribed() {
  uint64_t now = NowNanos();
  uint64_t next = next_sample_ns_.load(std::memory_order_relaxed);
  if (now >= next && next_sample_ns_.compare_exchange_strong(next, now + kSampleEveryNs)) {
    int running = probe_();
    oversubscribed_.store(running > cpus_, std::memory_order_relaxed);
  }
  return oversubscribed_.load(std::memory_order_relaxed);
}

}  // namespace tessera::net
