#include "cmd/workload.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "bench/page_driver.h"
#include "common/page_pattern.h"
#include "common/units.h"

namespace tessera::cmd {
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
    next = 0;
    drive.kind = PageIo::Kind::kRead;
    auto read = bench::DrivePages(
        *region, *queue, drive, sequential, nullptr, [&](const uint8_t* buf, uint64_t page) {
          uint64_t version = 0;
          if (!CheckPattern(buf, ps, page, &version) || version != 1) {
            return Corruption("page " + std::to_string(page) + " read back different from what was written");
          }
          ++report.verified;
          return Status::Ok();
        });
    s = read.status();
    if (s.ok()) report.read = std::move(*read);
  }
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
  uint64_t shares = 0;
  for (auto& [node, n] : r.pages_per_node) shares += n;
  std::printf("where the page fragments lived (%s, %llu per page):\n", r.redundancy.c_str(),
              static_cast<unsigned long long>(shares / std::max<uint64_t>(r.read.pages, 1)));
  for (auto& [node, n] : r.pages_per_node) {
    std::printf("  %-22s %9llu fragments (%4.1f%%)\n", node.c_str(), static_cast<unsigned long long>(n),
                100.0 * static_cast<double>(n) / static_cast<double>(shares));
  }
}

int RunDemo(const LocalClusterOptions& cluster_options, const WorkloadOptions& workload) {
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
  auto client = Client::Connect({.controller = (*cluster)->controller_address()});
  Result<WorkloadReport> report = client.ok() ? RunWorkload(**client, workload) : Result<WorkloadReport>(client.status());
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
