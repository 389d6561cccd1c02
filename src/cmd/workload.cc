#include "cmd/workload.h"

#include <csignal>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench/page_driver.h"
#include "common/clock.h"
#include "common/page_pattern.h"
#include "common/units.h"

namespace tessera::cmd {
namespace {

// Reads every page back through `queue`, checking each holds version 1.
Result<bench::PhaseReport> ReadAndVerify(Region& region, IoQueue& queue, uint32_t depth, uint64_t* verified) {
  const uint32_t ps = region.page_size();
  uint64_t next = 0;
  bench::DriveOptions drive{.kind = PageIo::Kind::kRead, .depth = depth, .max_pages = region.num_pages()};
  return bench::DrivePages(
      region, queue, drive, [&] { return next++; }, nullptr, [&](const uint8_t* buf, uint64_t page) {
        uint64_t version = 0;
        if (!CheckPattern(buf, ps, page, &version) || version != 1) {
          return Corruption("page " + std::to_string(page) + " read back different from what was written");
        }
        ++*verified;
        return Status::Ok();
      });
}

// Loses a node, reads everything degraded, waits for the rebuild, reads again.
Status LoseANode(Client& client, Region& region, IoQueue& queue, const WorkloadOptions& o, WorkloadReport* r) {
  uint64_t start = NowNanos();
  TS_RETURN_IF_ERROR(o.lose_node());
  r->lost_node = true;
  uint64_t ignored = 0;
  TS_ASSIGN_OR_RETURN(r->degraded_read, ReadAndVerify(region, queue, o.depth, &ignored));
  bool noticed = false;
  for (;;) {
    TS_ASSIGN_OR_RETURN(ClusterStatus s, client.GetClusterStatus());
    for (const RegionSummary& rs : s.regions) {
      if (rs.name != o.region) continue;
      noticed |= rs.health != "healthy";
      r->rebuilt_bytes = std::max(r->rebuilt_bytes, rs.rebuild_total_bytes);
      if (noticed && rs.health == "healthy") {
        r->rebuild_seconds = static_cast<double>(NowNanos() - start) / 1e9;
        TS_ASSIGN_OR_RETURN(auto again, ReadAndVerify(region, queue, o.depth, &r->verified_after_rebuild));
        (void)again;
        return Status::Ok();
      }
      if (rs.health == "lost") return DataLoss("region '" + o.region + "' lost pages");
    }
    if (NowNanos() - start > uint64_t(o.rebuild_timeout_s) * 1'000'000'000) {
      return TimedOut("region '" + o.region + "' was not rebuilt within " + std::to_string(o.rebuild_timeout_s) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Result<WorkloadReport> RunWorkload(Client& client, const WorkloadOptions& o) {
  WorkloadReport report;
  TS_ASSIGN_OR_RETURN(auto region, client.CreateRegion(o.region, o.size_bytes, {.redundancy = o.redundancy}));
  const uint32_t ps = region->page_size();
  report.page_size = ps;
  report.redundancy = region->redundancy();
  std::vector<std::string> homes = region->NodeOfEachFragment();
  const uint64_t stripes = (region->num_pages() + region->pages_per_stripe() - 1) / region->pages_per_stripe();
  const uint64_t width = homes.size() / stripes;
  for (uint64_t f = 0; f < homes.size(); ++f) {
    uint64_t first = f / width * region->pages_per_stripe();
    report.pages_per_node[homes[f]] += std::min<uint64_t>(region->pages_per_stripe(), region->num_pages() - first);
  }
  auto queue = region->NewQueue({.depth = o.depth, .max_batch_pages = o.batch});
  uint64_t next = 0;
  auto sequential = [&] { return next++; };
  bench::DriveOptions drive{.kind = PageIo::Kind::kWrite, .depth = o.depth, .max_pages = region->num_pages()};
  auto wrote = bench::DrivePages(
      *region, *queue, drive, sequential, [&](uint8_t* buf, uint64_t page) { FillPattern(buf, ps, page, 1); },
      [](const uint8_t*, uint64_t) { return Status::Ok(); });
  Status s = wrote.status();
  if (s.ok()) {
    report.write = std::move(*wrote);
    auto read = ReadAndVerify(*region, *queue, o.depth, &report.verified);
    s = read.status();
    if (s.ok()) report.read = std::move(*read);
  }
  if (s.ok() && o.lose_node) s = LoseANode(client, *region, *queue, o, &report);
  queue.reset();
  region.reset();
  Status deleted = client.DeleteRegion(o.region);
  TS_RETURN_IF_ERROR(s);
  TS_RETURN_IF_ERROR(deleted);
  return report;
}

void PrintWorkloadReport(const WorkloadReport& r, uint32_t depth) {
  auto phase = [&](const char* what, const bench::PhaseReport& p) {
    double rate = static_cast<double>(p.pages) / p.seconds;
    std::printf("%-6s %s (%llu pages) in %.2f s: %.0f pages/s, %.2f GB/s; page latency at depth %u: p50 %s, p99 %s\n",
                what, FormatSize(p.pages * r.page_size).c_str(), static_cast<unsigned long long>(p.pages), p.seconds,
                rate, rate * static_cast<double>(r.page_size) / 1e9, depth,
                FormatSeconds(static_cast<double>(p.latency.Percentile(50)) / 1e9).c_str(),
                FormatSeconds(static_cast<double>(p.latency.Percentile(99)) / 1e9).c_str());
  };
  phase("wrote", r.write);
  phase("read", r.read);
  std::printf("verified %llu of %llu pages: every page read back exactly as written\n",
              static_cast<unsigned long long>(r.verified), static_cast<unsigned long long>(r.read.pages));
  if (r.lost_node) {
    std::printf("killed a memory node (kill -9):\n");
    phase("  read", r.degraded_read);
    std::printf("  every page verified while degraded; rebuilt %s and healthy again %.1f s after the kill\n",
                FormatSize(r.rebuilt_bytes).c_str(), r.rebuild_seconds);
    std::printf("  verified %llu of %llu pages after the rebuild\n",
                static_cast<unsigned long long>(r.verified_after_rebuild),
                static_cast<unsigned long long>(r.read.pages));
  }
  uint64_t shares = 0;
  for (auto& [node, n] : r.pages_per_node) shares += n;
  std::printf("where the page fragments lived (%s, %llu per page):\n", r.redundancy.c_str(),
              static_cast<unsigned long long>(shares / std::max<uint64_t>(r.read.pages, 1)));
  for (auto& [node, n] : r.pages_per_node) {
    std::printf("  %-22s %9llu fragments (%4.1f%%)\n", node.c_str(), static_cast<unsigned long long>(n),
                100.0 * static_cast<double>(n) / static_cast<double>(shares));
  }
}

int RunDemo(const LocalClusterOptions& cluster_options, const WorkloadOptions& workload, bool lose_a_node) {
  std::printf("starting a local cluster: controller + %d memory nodes of %s each\n", cluster_options.memnodes,
              FormatSize(cluster_options.capacity_bytes).c_str());
  std::fflush(stdout);
  auto cluster = LocalCluster::Start(cluster_options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "tessera demo: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  std::printf("controller at %s; writing and reading back %s of pages\n", (*cluster)->controller_address().c_str(),
              FormatSize(workload.size_bytes).c_str());
  std::fflush(stdout);
  WorkloadOptions w = workload;
  if (lose_a_node) {
    // The first memory node holds part of every region on a 6-or-7-node cluster.
    w.lose_node = [&] {
      (*cluster)->Kill(1, SIGKILL);
      return Status::Ok();
    };
  }
  auto client = Client::Connect({.controller = (*cluster)->controller_address()});
  Result<WorkloadReport> report = client.ok() ? RunWorkload(**client, w) : Result<WorkloadReport>(client.status());
  client = Status(Code::kCancelled, "done");
  if (!report.ok()) {
    std::fprintf(stderr, "tessera demo: %s\n", report.status().ToString().c_str());
    return 1;
  }
  PrintWorkloadReport(*report, workload.depth);
  std::printf("stopping the cluster\n");
  return 0;
}

}  // namespace tessera::cmd
