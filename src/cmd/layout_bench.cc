// tessera-layout-bench: the measurement behind the erasure-coding layout
// (issue 3, doc/design.md). Runs RS(4,2) both ways over six real memory nodes
// through the real client library:
//   split  — each 4 KiB page is cut into 4 x 1 KiB data fragments plus 2 parity
//            fragments on 6 nodes: a read gathers 4, a write scatters 6;
//   stripe — whole 4 KiB pages, 4 data pages + 2 parity pages per stripe: a
//            read is one page, a write reads the old page and both parities,
//            then writes all three (parity updated by delta);
//   span   — the stripe layout written log-structured (Carbink): pages are
//            packed four at a time into fresh stripes, written whole with
//            their parity and no reads (an operation is one stripe of 4);
//   ec     — the library's own ec:4+2 region (split pages), reading the 4
//            fragments a page needs, or 5 and using the first 4 that agree
//            (late binding, Hydra).
// Degraded reads decode from the survivors. Each operation is timed alone
// (depth 1), and in batches of 32 operations for throughput.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <vector>

#include "bench/page_driver.h"
#include "cmd/local_cluster.h"
#include "common/clock.h"
#include "common/units.h"
#include "ec/reed_solomon.h"

namespace tessera::cmd {
namespace {

constexpr int kK = 4, kM = 2, kWidth = kK + kM;
constexpr uint32_t kPage = 4096, kFrag = kPage / kK;
constexpr uint32_t kStripes = 256;  // pages per fragment: the controller's default

// Fragment f of a region holds pages [f*kStripes, (f+1)*kStripes), and
// fragments 0..5 are on six distinct nodes, so column c of stripe s is region
// page c*kStripes + s.
uint64_t At(int column, uint32_t stripe) { return uint64_t(column) * kStripes + stripe; }

Status RunRound(IoQueue& q, std::vector<PageIo>& ios) {
  TS_RETURN_IF_ERROR(q.Submit(ios));
  std::vector<Completion> done;
  while (done.size() < ios.size()) TS_RETURN_IF_ERROR(q.Reap(&done, ios.size() - done.size(), 10000).status());
  for (auto& c : done) TS_RETURN_IF_ERROR(c.status);
  return Status::Ok();
}

struct Figures {
  LatencyHistogram one;  // depth 1
  double batched_ops_per_s = 0;
};

// `run(batch)` builds and runs every round of `batch` operations at once.
Result<Figures> Measure(const std::function<Status(int batch)>& run, double seconds) {
  Figures f;
  uint64_t end = NowNanos() + static_cast<uint64_t>(seconds * 1e9);
  while (NowNanos() < end) {
    uint64_t t = NowNanos();
    TS_RETURN_IF_ERROR(run(1));
    f.one.Record(NowNanos() - t);
  }
  uint64_t ops = 0, t0 = NowNanos();
  end = t0 + static_cast<uint64_t>(seconds * 1e9);
  while (NowNanos() < end) {
    TS_RETURN_IF_ERROR(run(32));
    ops += 32;
  }
  f.batched_ops_per_s = static_cast<double>(ops) / (static_cast<double>(NowNanos() - t0) / 1e9);
  return f;
}

class Bench {
 public:
  Bench(Region* split, Region* stripe, Region* ec, const ec::ReedSolomon* rs)
      : split_(split), stripe_(stripe), ec_(ec), rs_(rs), buf_(32 * kWidth * kPage), old_(32 * kWidth * kPage) {}

  // `batch` whole stripes, each 4 fresh pages and their 2 parity pages.
  Status SpanWrite(int batch) {
    std::vector<PageIo> ios;
    for (int b = 0; b < batch; ++b) {
      uint32_t s = Next() % kStripes;
      std::vector<const uint8_t*> data;
      std::vector<uint8_t*> parity;
      for (int c = 0; c < kK; ++c) data.push_back(Slot(b, c, kPage));
      for (int c = kK; c < kWidth; ++c) parity.push_back(Slot(b, c, kPage));
      rs_->Encode(kPage, data, parity);
      for (int c = 0; c < kWidth; ++c) ios.push_back({PageIo::Kind::kWrite, At(c, s), 1, Slot(b, c, kPage), 0});
    }
    auto q = stripe_->NewQueue({.depth = 1024, .max_batch_pages = 256});
    return RunRound(*q, ios);
  }

  Status EcRead(int batch, uint32_t read_extra) {
    std::vector<PageIo> ios;
    for (int b = 0; b < batch; ++b) ios.push_back({PageIo::Kind::kRead, Next() % ec_->num_pages(), 1, Slot(b, 0, kPage), 0});
    auto q = ec_->NewQueue({.depth = 1024, .max_batch_pages = 256, .read_extra = read_extra});
    return RunRound(*q, ios);
  }

  Status SplitRead(int batch, bool degraded) {
    // Healthy: data columns 0..3. Degraded: column 1 is lost, so 0,2,3 + parity 4.
    const int cols[4] = {0, degraded ? 4 : 1, 2, 3};
    std::vector<PageIo> ios;
    for (int b = 0; b < batch; ++b) {
      uint32_t s = Next() % kStripes;
      for (int c : cols) ios.push_back({PageIo::Kind::kRead, At(c, s), 1, Slot(b, c, kFrag), 0});
    }
    auto q = split_->NewQueue({.depth = 1024, .max_batch_pages = 256});
    TS_RETURN_IF_ERROR(RunRound(*q, ios));
    if (degraded) {
      for (int b = 0; b < batch; ++b) TS_RETURN_IF_ERROR(Decode(b, kFrag, 1));
    }
    return Status::Ok();
  }

  Status SplitWrite(int batch) {
    std::vector<PageIo> ios;
    for (int b = 0; b < batch; ++b) {
      uint32_t s = Next() % kStripes;
      std::vector<const uint8_t*> data;
      std::vector<uint8_t*> parity;
      for (int c = 0; c < kK; ++c) data.push_back(Slot(b, c, kFrag));
      for (int c = kK; c < kWidth; ++c) parity.push_back(Slot(b, c, kFrag));
      rs_->Encode(kFrag, data, parity);
      for (int c = 0; c < kWidth; ++c) ios.push_back({PageIo::Kind::kWrite, At(c, s), 1, Slot(b, c, kFrag), 0});
    }
    auto q = split_->NewQueue({.depth = 1024, .max_batch_pages = 256});
    return RunRound(*q, ios);
  }

  Status StripeRead(int batch, bool degraded) {
    std::vector<PageIo> ios;
    for (int b = 0; b < batch; ++b) {
      uint32_t s = Next() % kStripes;
      if (!degraded) {
        ios.push_back({PageIo::Kind::kRead, At(1, s), 1, Slot(b, 1, kPage), 0});
        continue;
      }
      for (int c : {0, 2, 3, 4}) ios.push_back({PageIo::Kind::kRead, At(c, s), 1, Slot(b, c, kPage), 0});
    }
    auto q = stripe_->NewQueue({.depth = 1024, .max_batch_pages = 256});
    TS_RETURN_IF_ERROR(RunRound(*q, ios));
    if (degraded) {
      for (int b = 0; b < batch; ++b) TS_RETURN_IF_ERROR(Decode(b, kPage, 1));
    }
    return Status::Ok();
  }

  Status StripeWrite(int batch) {
    std::vector<PageIo> reads, writes;
    std::vector<uint32_t> stripes;
    for (int b = 0; b < batch; ++b) {
      uint32_t s = Next() % kStripes;
      stripes.push_back(s);
      reads.push_back({PageIo::Kind::kRead, At(1, s), 1, Old(b, 1), 0});
      for (int c = kK; c < kWidth; ++c) reads.push_back({PageIo::Kind::kRead, At(c, s), 1, Slot(b, c, kPage), 0});
    }
    auto q = stripe_->NewQueue({.depth = 1024, .max_batch_pages = 256});
    TS_RETURN_IF_ERROR(RunRound(*q, reads));
    for (int b = 0; b < batch; ++b) {
      uint8_t* fresh = Slot(b, 1, kPage);
      uint8_t* delta = Old(b, 1);
      for (uint32_t i = 0; i < kPage; ++i) delta[i] ^= fresh[i];
      std::vector<uint8_t*> parity = {Slot(b, kK, kPage), Slot(b, kK + 1, kPage)};
      rs_->ApplyDelta(kPage, 1, delta, parity);
      for (int c : {1, kK, kK + 1}) writes.push_back({PageIo::Kind::kWrite, At(c, stripes[b]), 1, Slot(b, c, kPage), 0});
    }
    return RunRound(*q, writes);
  }

 private:
  uint8_t* Slot(int b, int c, uint32_t unit) { return &buf_[(uint64_t(b) * kWidth + c) * unit]; }
  uint8_t* Old(int b, int c) { return &old_[(uint64_t(b) * kWidth + c) * kPage]; }
  uint32_t Next() { return static_cast<uint32_t>(rng_()); }
  Status Decode(int b, uint32_t unit, int lost) {
    std::vector<uint8_t*> f;
    bool present[kWidth];
    for (int c = 0; c < kWidth; ++c) {
      f.push_back(Slot(b, c, unit));
      present[c] = c != lost && c != kWidth - 1;
    }
    return rs_->Reconstruct(unit, f, present);
  }

  Region* split_;
  Region* stripe_;
  Region* ec_;
  const ec::ReedSolomon* rs_;
  std::vector<uint8_t> buf_, old_;
  std::mt19937 rng_{5};
};

int Main(double seconds) {
  // The daemons are the tessera binary built beside this one.
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string tessera = self.substr(0, self.rfind('/') + 1) + "tessera";
  auto cluster = LocalCluster::Start({.memnodes = kWidth, .capacity_bytes = 64ull << 20, .binary = tessera});
  if (!cluster.ok()) return std::fprintf(stderr, "%s\n", cluster.status().ToString().c_str()), 1;
  auto client = Client::Connect({.controller = (*cluster)->controller_address()});
  auto rs = ec::ReedSolomon::Create(kK, kM);
  if (!client.ok() || !rs.ok()) return 1;
  auto split = (*client)->CreateRegion("split", uint64_t(kWidth) * kStripes * kFrag, {.page_size = kFrag});
  auto stripe = (*client)->CreateRegion("stripe", uint64_t(kWidth) * kStripes * kPage, {.page_size = kPage});
  auto ec = (*client)->CreateRegion("ec", uint64_t(kStripes) * kPage, {.redundancy = "ec:4+2"});
  if (!split.ok() || !stripe.ok() || !ec.ok()) return std::fprintf(stderr, "create regions failed\n"), 1;
  for (Region* r : {split->get(), stripe->get()}) {
    auto homes = r->NodeOfEachFragment();
    if (r->pages_per_stripe() != kStripes || std::set(homes.begin(), homes.end()).size() != kWidth) {
      return std::fprintf(stderr, "region %s is not laid out over 6 distinct nodes\n", r->name().c_str()), 1;
    }
  }
  {
    std::vector<uint8_t> fill((*ec)->num_pages() * kPage, 0x3c);
    if (Status w = (*ec)->Write(0, (*ec)->num_pages(), fill.data()); !w.ok()) {
      return std::fprintf(stderr, "fill ec: %s\n", w.ToString().c_str()), 1;
    }
  }
  Bench bench(split->get(), stripe->get(), ec->get(), rs->get());
  struct Case {
    const char* name;
    std::function<Status(int)> run;
    int bytes_moved;  // per 4 KiB page, on the network
  } cases[] = {
      {"split  read", [&](int n) { return bench.SplitRead(n, false); }, 4096},
      {"stripe read", [&](int n) { return bench.StripeRead(n, false); }, 4096},
      {"split  read degraded", [&](int n) { return bench.SplitRead(n, true); }, 4096},
      {"stripe read degraded", [&](int n) { return bench.StripeRead(n, true); }, 4 * 4096},
      {"split  write", [&](int n) { return bench.SplitWrite(n); }, 6 * 1024},
      {"stripe write", [&](int n) { return bench.StripeWrite(n); }, 6 * 4096},
      {"span   write (4 pages)", [&](int n) { return bench.SpanWrite(n); }, 6 * 4096 / 4},
      {"ec     read k", [&](int n) { return bench.EcRead(n, 0); }, 4096},
      {"ec     read k+1", [&](int n) { return bench.EcRead(n, 1); }, 5 * 1024},
  };
  std::printf("RS(4,2) over 6 memory nodes, 4 KiB pages, %.1f s per case\n", seconds);
  std::printf("%-22s %10s %10s %16s %14s\n", "CASE", "P50", "P99", "BATCHED OPS/S", "BYTES/PAGE");
  for (auto& c : cases) {
    auto f = Measure(c.run, seconds);
    if (!f.ok()) return std::fprintf(stderr, "%s: %s\n", c.name, f.status().ToString().c_str()), 1;
    std::printf("%-22s %10s %10s %16.0f %14d\n", c.name, FormatSeconds(f->one.Percentile(50) / 1e9).c_str(),
                FormatSeconds(f->one.Percentile(99) / 1e9).c_str(), f->batched_ops_per_s, c.bytes_moved);
  }
  return 0;
}

}  // namespace
}  // namespace tessera::cmd

int main(int argc, char** argv) { return tessera::cmd::Main(argc > 1 ? std::atof(argv[1]) : 2.0); }
