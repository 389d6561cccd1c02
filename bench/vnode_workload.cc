// tessera-vnode-workload: the programs behind bench/vnode-bench.sh, run
// natively, under a cgroup memory limit with swap, and under `tessera run`.
// Each allocates its working set with malloc (which the shim puts in the
// pool), times its own work, and prints one JSON line with a checksum that
// must match across the ways it was run.
//
//   seq MIB        write every page, then read it all twice
//   random MIB     fill, then 100k read-modify-writes of random pages
//   minibatch MIB  a training-like loop: a 1 MiB model, batches of 32
//                  contiguous 4 KiB records at random places, 2 epochs
//   sort MIB       std::sort of random 64-bit keys
//   zipf MIB       YCSB-C-like gets: 4 KiB records, 200k reads of whole
//                  records drawn from a scrambled Zipf distribution (theta
//                  0.99, as YCSB's default), each copied out as a get returns it
//   uffd-local     the local userfaultfd fault: a handler thread in this
//                  process serving zero pages (p50/p99 of the touch)
//   pingpong       raw TCP ping-pong, 16 B → 4 KiB, waiting as the agent (spin
//                  50 us, then sleep) and an embedded memory node (sleep) do
#include <poll.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/tcp_pingpong.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "vnode/uffd.h"

namespace {

constexpr size_t kPage = 4096;

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

struct Out {
  double seconds;
  uint64_t checksum;
};

uint64_t* Alloc(size_t bytes) {
  auto* p = static_cast<uint64_t*>(std::malloc(bytes));
  if (p == nullptr) {
    std::fprintf(stderr, "malloc(%zu) failed\n", bytes);
    std::exit(1);
  }
  return p;
}

Out Seq(size_t bytes) {
  uint64_t start = tessera::NowNanos();
  uint64_t* a = Alloc(bytes);
  const size_t words = bytes / 8;
  for (size_t i = 0; i < words; i += kPage / 8) a[i] = Mix(i);
  uint64_t sum = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < words; i += 8) sum += a[i];
  }
  return {(tessera::NowNanos() - start) / 1e9, sum};
}

Out Random(size_t bytes) {
  uint64_t start = tessera::NowNanos();
  uint64_t* a = Alloc(bytes);
  const size_t words = bytes / 8, pages = bytes / kPage;
  for (size_t i = 0; i < words; i += kPage / 8) a[i] = Mix(i);
  uint64_t x = 1, sum = 0;
  for (int i = 0; i < 100'000; ++i) {
    x = Mix(x + i);
    uint64_t* w = &a[(x % pages) * (kPage / 8) + (x >> 40) % (kPage / 8)];
    sum += *w;
    *w += i;
  }
  return {(tessera::NowNanos() - start) / 1e9, sum};
}

Out Minibatch(size_t bytes) {
  constexpr size_t kModel = 1 << 20, kRecord = 4096, kBatch = 32;
  uint64_t start = tessera::NowNanos();
  const size_t records = (bytes - kModel) / kRecord;
  auto* data = reinterpret_cast<float*>(Alloc(records * kRecord));
  auto* model = reinterpret_cast<float*>(Alloc(kModel));
  const size_t per_record = kRecord / sizeof(float), model_n = kModel / sizeof(float);
  for (size_t r = 0; r < records; ++r) {
    for (size_t i = 0; i < per_record; i += 16) data[r * per_record + i] = static_cast<float>(Mix(r + i) % 1000) / 1000.f;
  }
  for (size_t i = 0; i < model_n; ++i) model[i] = 0.001f;
  uint64_t x = 7;
  for (size_t step = 0; step < 2 * records / kBatch; ++step) {
    x = Mix(x + step);
    const size_t first = x % (records - kBatch);
    for (size_t r = first; r < first + kBatch; ++r) {
      const float* rec = data + r * per_record;
      float* m = model + (r % (model_n / per_record)) * per_record;
      float dot = 0;
      for (size_t i = 0; i < per_record; i += 16) dot += rec[i] * m[i];
      for (size_t i = 0; i < per_record; i += 16) m[i] -= 0.0001f * (dot - 1.f) * rec[i];
    }
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < model_n; i += 16) sum += static_cast<uint64_t>(model[i] * 1e6);
  return {(tessera::NowNanos() - start) / 1e9, sum};
}

Out Sort(size_t bytes) {
  uint64_t start = tessera::NowNanos();
  const size_t n = bytes / 8;
  uint64_t* a = Alloc(bytes);
  for (size_t i = 0; i < n; ++i) a[i] = Mix(i + 1);
  std::sort(a, a + n);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i += 4096) sum += a[i] * (i + 1);
  return {(tessera::NowNanos() - start) / 1e9, sum};
}

// YCSB's Zipf generator (Gray et al., "Quickly generating billion-record
// synthetic databases"): item i is drawn with probability ~ 1/(i+1)^theta.
class Zipf {
 public:
  Zipf(uint64_t n, double theta) : n_(n), theta_(theta) {
    double zeta2 = 0;
    for (uint64_t i = 1; i <= n; ++i) {
      zetan_ += 1.0 / std::pow(static_cast<double>(i), theta);
      if (i == 2) zeta2 = zetan_;
    }
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) / (1.0 - zeta2 / zetan_);
  }
  // `u` uniform in [0, 1).
  uint64_t Next(double u) const {
    const double uz = u * zetan_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
    const auto i = static_cast<uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return std::min(i, n_ - 1);
  }

 private:
  uint64_t n_;
  double theta_, zetan_ = 0, alpha_ = 0, eta_ = 0;
};

Out ZipfGets(size_t bytes) {
  constexpr size_t kRecord = 4096, kGets = 200'000;
  uint64_t start = tessera::NowNanos();
  const size_t records = bytes / kRecord;
  uint64_t* a = Alloc(records * kRecord);
  for (size_t r = 0; r < records; ++r) {
    for (size_t i = 0; i < kRecord / 8; i += 64) a[r * (kRecord / 8) + i] = Mix(r * 64 + i);
  }
  const Zipf zipf(records, 0.99);
  uint64_t value[kRecord / 8];
  uint64_t x = 3, sum = 0;
  for (size_t g = 0; g < kGets; ++g) {
    x = Mix(x + g);
    // Scrambled, as YCSB does: the hot records lie all over the table.
    const uint64_t r = Mix(zipf.Next(static_cast<double>(x >> 11) * 0x1.0p-53) + 1) % records;
    std::memcpy(value, &a[r * (kRecord / 8)], kRecord);
    sum += value[(g % 8) * 64] + r;
  }
  return {(tessera::NowNanos() - start) / 1e9, sum};
}

int UffdLocal() {
  using tessera::vnode::Uffd;
  auto uffd = Uffd::Open({}, {});
  if (!uffd.ok()) {
    std::fprintf(stderr, "%s\n", uffd.status().ToString().c_str());
    return 1;
  }
  constexpr size_t kPages = 16384;
  void* m = mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  auto* base = static_cast<uint8_t*>(m);
  madvise(m, kPages * kPage, MADV_NOHUGEPAGE);
  if (!uffd->RegisterMissing(m, kPages * kPage).ok()) return 1;
  std::atomic<bool> stop{false};
  // Served as the pager serves: spin 50 us on the descriptor, then sleep.
  std::thread handler([&] {
    static uint8_t page[kPage];
    std::vector<tessera::vnode::UffdEvent> ev;
    while (!stop.load()) {
      pollfd p{uffd->fd(), POLLIN, 0};
      uint64_t until = tessera::NowNanos() + 50'000;
      while (poll(&p, 1, 0) == 0 && tessera::NowNanos() < until) {}
      if (!(p.revents & POLLIN) && poll(&p, 1, 100) <= 0) continue;
      ev.clear();
      if (!uffd->ReadEvents(&ev).ok()) return;
      for (auto& e : ev) (void)uffd->Copy(reinterpret_cast<void*>(e.address), page, kPage);
    }
  });
  tessera::LatencyHistogram h;
  for (size_t i = 0; i < kPages; ++i) {
    uint64_t t = tessera::NowNanos();
    base[i * kPage] = 1;
    h.Record(tessera::NowNanos() - t);
  }
  stop.store(true);
  handler.join();
  std::printf("{\"kind\":\"uffd-local\",\"p50_ns\":%llu,\"p99_ns\":%llu}\n",
              static_cast<unsigned long long>(h.Percentile(50)), static_cast<unsigned long long>(h.Percentile(99)));
  return 0;
}

int PingPong() {
  auto r = tessera::bench::RunTcpPingPong(20000, {.spin_us = 50}, {.spin_us = 0});
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("{\"kind\":\"pingpong\",\"p50_ns\":%llu,\"p99_ns\":%llu}\n",
              static_cast<unsigned long long>(r->latency.Percentile(50)),
              static_cast<unsigned long long>(r->latency.Percentile(99)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string kind = argc > 1 ? argv[1] : "";
  if (kind == "uffd-local") return UffdLocal();
  if (kind == "pingpong") return PingPong();
  const size_t mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  if (mib < 4) {
    std::fprintf(stderr, "usage: %s seq|random|minibatch|sort|zipf MIB (>= 4) | uffd-local | pingpong\n", argv[0]);
    return 2;
  }
  const size_t bytes = mib << 20;
  Out o;
  if (kind == "seq") {
    o = Seq(bytes);
  } else if (kind == "random") {
    o = Random(bytes);
  } else if (kind == "minibatch") {
    o = Minibatch(bytes);
  } else if (kind == "sort") {
    o = Sort(bytes);
  } else if (kind == "zipf") {
    o = ZipfGets(bytes);
  } else {
    std::fprintf(stderr, "unknown workload %s\n", kind.c_str());
    return 2;
  }
  std::printf("{\"kind\":\"%s\",\"mib\":%zu,\"seconds\":%.3f,\"checksum\":%llu}\n", kind.c_str(), mib, o.seconds,
              static_cast<unsigned long long>(o.checksum));
  return 0;
}
