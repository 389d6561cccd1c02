#include "cmd/redundancy_bench.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/page_driver.h"
#include "cmd/local_cluster.h"
#include "common/clock.h"
#include "common/page_pattern.h"
#include "common/units.h"
#include "proto/redundancy.h"

namespace tessera::cmd {
namespace {

struct Phase {
  double pages_per_s = 0;
  double p50_us = 0, p99_us = 0;
  // Where the CPU went, per page: this process (the client) and the memory
  // nodes. On a box where they share cores, their sum bounds throughput.
  double client_cpu_us = 0, nodes_cpu_us = 0;
};

// CPU seconds (user + system) a process has used so far; 0 if it is gone.
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  // Fields after the command name (which may hold spaces), from field 3 on.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double NodesCpuSeconds(const LocalCluster& cluster) {
  double sum = 0;
  for (size_t i = 1; i < cluster.pids().size(); ++i) {
    if (cluster.pids()[i] > 0) sum += CpuSeconds(cluster.pids()[i]);
  }
  return sum;
}

struct SchemeReport {
  std::string redundancy;
  int k = 1;
  Phase fill;  // the first write of every page (memory nodes fault pages in)
  Phase write1, write64, read1, read64;
  double stored_per_byte = 0;
  bool degraded = false;  // a scheme that survives a loss
  Phase healthy_read, degraded_read;  // the same pages, before and after the kill
  uint64_t rebuilt_bytes = 0;
  double rebuild_seconds = 0;     // from "rebuilding" seen to healthy
  double full_redundancy_s = 0;   // from the kill to healthy
};

Phase ToPhase(const bench::PhaseReport& r) {
  return {r.pages_per_second(), r.latency.Percentile(50) / 1e3, r.latency.Percentile(99) / 1e3};
}

nlohmann::json ToJson(const Phase& p) {
  nlohmann::json j = {{"pages_per_s", p.pages_per_s}, {"p50_us", p.p50_us}, {"p99_us", p.p99_us}};
  if (p.client_cpu_us > 0) {
    j["client_cpu_us_per_page"] = p.client_cpu_us;
    j["memnodes_cpu_us_per_page"] = p.nodes_cpu_us;
  }
  return j;
}

void Say(bool json, const std::string& what) {
  if (!json) std::fprintf(stderr, "bench: %s\n", what.c_str());
}

// Random single-page I/O on `pages` at `depth` for `seconds` (or one pass
// over them in order when `seconds` is 0). Reads check each page's number.
Result<Phase> Drive(Region& region, PageIo::Kind kind, uint32_t depth, const std::vector<uint64_t>& pages,
                    double seconds, const LocalCluster* cluster = nullptr) {
  const double client0 = CpuSeconds(getpid()), nodes0 = cluster ? NodesCpuSeconds(*cluster) : 0;
  auto queue = region.NewQueue({.depth = depth, .max_batch_pages = depth});
  std::mt19937_64 rng(depth);
  uint64_t next = 0;
  bench::DriveOptions d{.kind = kind, .depth = depth, .max_pages = seconds > 0 ? UINT64_MAX : pages.size(),
                        .deadline_ns = seconds > 0 ? NowNanos() + static_cast<uint64_t>(seconds * 1e9) : 0};
  const uint32_t ps = region.page_size();
  TS_ASSIGN_OR_RETURN(auto r, bench::DrivePages(
                                  region, *queue, d,
                                  [&] { return seconds > 0 ? pages[rng() % pages.size()] : pages[next++]; },
                                  [&](uint8_t* b, uint64_t p) {
                                    // The first write of a page gets the full pattern; timed
                                    // writes only restamp the page number (cheap: the client's
                                    // CPU is what limits throughput here).
                                    if (seconds > 0) {
                                      std::memcpy(b, &p, sizeof p);
                                    } else {
                                      FillPattern(b, ps, p, 1);
                                    }
                                  },
                                  [&](const uint8_t* b, uint64_t p) {
                                    uint64_t got;
                                    std::memcpy(&got, b, sizeof got);
                                    return got == p ? Status::Ok() : Corruption("page " + std::to_string(p));
                                  }));
  Phase phase = ToPhase(r);
  if (cluster != nullptr && r.pages > 0) {
    phase.client_cpu_us = (CpuSeconds(getpid()) - client0) * 1e6 / static_cast<double>(r.pages);
    phase.nodes_cpu_us = (NodesCpuSeconds(*cluster) - nodes0) * 1e6 / static_cast<double>(r.pages);
  }
  return phase;
}

uint64_t UsedBytes(const ClusterStatus& s) {
  uint64_t used = 0;
  for (const NodeStatus& n : s.nodes) used += n.used_bytes;
  return used;
}

// Pages whose share on `node` is a data share (so a read of them decodes, or
// goes to another replica, once the node is gone).
std::vector<uint64_t> PagesLosingData(const Region& region, int k, const std::string& node) {
  std::vector<std::string> homes = region.NodeOfEachFragment();
  const uint64_t pps = region.pages_per_stripe();
  const uint64_t stripes = (region.num_pages() + pps - 1) / pps;
  const uint64_t width = homes.size() / stripes;
  std::vector<uint64_t> out;
  for (uint64_t s = 0; s < stripes; ++s) {
    for (int j = 0; j < k; ++j) {
      if (homes[s * width + j] != node) continue;
      for (uint64_t p = s * pps; p < std::min(region.num_pages(), (s + 1) * pps); ++p) out.push_back(p);
    }
  }
  return out;
}

// Polls until the region is healthy again; fills the rebuild figures.
Status WaitForRebuild(Client& client, const std::string& name, uint64_t killed_ns, SchemeReport* r) {
  uint64_t rebuilding_since = 0;
  for (;;) {
    TS_ASSIGN_OR_RETURN(auto regions, client.ListRegions());
    for (const RegionSummary& s : regions) {
      if (s.name != name) continue;
      if (s.health == "rebuilding" && rebuilding_since == 0) rebuilding_since = NowNanos();
      r->rebuilt_bytes = std::max(r->rebuilt_bytes, s.rebuild_total_bytes);
      if (s.health == "lost") return DataLoss("region '" + name + "' lost pages");
      if (s.health == "healthy" && rebuilding_since != 0) {
        uint64_t now = NowNanos();
        r->rebuild_seconds = static_cast<double>(now - rebuilding_since) / 1e9;
        r->full_redundancy_s = static_cast<double>(now - killed_ns) / 1e9;
        return Status::Ok();
      }
    }
    if (NowNanos() - killed_ns > 300ull * 1'000'000'000) return TimedOut("no rebuild within 300 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<SchemeReport> RunScheme(const RedundancyBenchOptions& o, const std::string& scheme) {
  TS_ASSIGN_OR_RETURN(proto::Redundancy red, proto::ParseRedundancy(scheme));
  SchemeReport r{.redundancy = scheme, .k = red.k};
  Say(o.json, scheme + ": starting " + std::to_string(o.memnodes) + " memory nodes");
  TS_ASSIGN_OR_RETURN(auto cluster, LocalCluster::Start({.memnodes = o.memnodes, .capacity_bytes = 4ull << 30}));
  TS_ASSIGN_OR_RETURN(auto client, Client::Connect({.controller = cluster->controller_address()}));
  TS_ASSIGN_OR_RETURN(ClusterStatus before, client->GetClusterStatus());
  TS_ASSIGN_OR_RETURN(auto region, client->CreateRegion("bench", o.size_bytes, {.redundancy = scheme}));
  TS_ASSIGN_OR_RETURN(ClusterStatus after, client->GetClusterStatus());
  r.stored_per_byte = static_cast<double>(UsedBytes(after) - UsedBytes(before)) /
                      static_cast<double>(region->num_pages() * region->page_size());
  std::vector<uint64_t> all(region->num_pages());
  for (uint64_t p = 0; p < all.size(); ++p) all[p] = p;

  Say(o.json, scheme + ": writing " + FormatSize(o.size_bytes) + ", then timed 4 KiB writes and reads");
  TS_ASSIGN_OR_RETURN(r.fill, Drive(*region, PageIo::Kind::kWrite, 64, all, 0));  // every page, in order
  TS_ASSIGN_OR_RETURN(r.write1, Drive(*region, PageIo::Kind::kWrite, 1, all, o.seconds));
  TS_ASSIGN_OR_RETURN(r.write64, Drive(*region, PageIo::Kind::kWrite, 64, all, o.seconds, cluster.get()));
  TS_ASSIGN_OR_RETURN(r.read1, Drive(*region, PageIo::Kind::kRead, 1, all, o.seconds));
  TS_ASSIGN_OR_RETURN(r.read64, Drive(*region, PageIo::Kind::kRead, 64, all, o.seconds, cluster.get()));
  if (red.m == 0) return r;  // a loss would lose data: nothing more to measure

  // Lose the node holding the first data fragment; read pages that lost data.
  const std::string victim = region->NodeOfEachFragment()[0];
  std::vector<uint64_t> hit = PagesLosingData(*region, red.k, victim);
  TS_ASSIGN_OR_RETURN(r.healthy_read, Drive(*region, PageIo::Kind::kRead, 1, hit, o.seconds / 2));
  Say(o.json, scheme + ": kill -9 of memory node " + victim + "; degraded reads, then the rebuild");
  cluster->Kill(cluster->MemnodeIndex(victim), SIGKILL);
  const uint64_t killed = NowNanos();
  // Measured before the controller declares the node dead (node timeout,
  // 2 s), so the rebuild does not compete with it.
  TS_ASSIGN_OR_RETURN(r.degraded_read, Drive(*region, PageIo::Kind::kRead, 1, hit, 1.0));
  r.degraded = true;
  TS_RETURN_IF_ERROR(WaitForRebuild(*client, region->name(), killed, &r));
  return r;
}

nlohmann::json ToJson(const SchemeReport& r) {
  nlohmann::json j = {{"redundancy", r.redundancy},         {"first_write_depth64", ToJson(r.fill)},
                      {"write_depth1", ToJson(r.write1)},
                      {"write_depth64", ToJson(r.write64)}, {"read_depth1", ToJson(r.read1)},
                      {"read_depth64", ToJson(r.read64)},   {"stored_bytes_per_byte", r.stored_per_byte}};
  if (r.degraded) {
    j["healthy_read_of_lost_pages"] = ToJson(r.healthy_read);
    j["degraded_read"] = ToJson(r.degraded_read);
    j["degraded_vs_healthy_p50"] = r.degraded_read.p50_us / r.healthy_read.p50_us;
    j["rebuild"] = {{"bytes", r.rebuilt_bytes},
                    {"seconds", r.rebuild_seconds},
                    {"gb_per_s", r.rebuild_seconds > 0 ? r.rebuilt_bytes / r.rebuild_seconds / 1e9 : 0},
                    {"kill_to_full_redundancy_s", r.full_redundancy_s}};
  }
  return j;
}

void Print(const std::vector<SchemeReport>& all) {
  std::printf("\n%-12s %9s %9s %11s %9s %9s %11s %7s\n", "REDUNDANCY", "WRITE P50", "P99", "WRITES/S@64",
              "READ P50", "P99", "READS/S@64", "STORED");
  for (const SchemeReport& r : all) {
    std::printf("%-12s %7.1fus %7.1fus %11.0f %7.1fus %7.1fus %11.0f %6.2fx\n", r.redundancy.c_str(), r.write1.p50_us,
                r.write1.p99_us, r.write64.pages_per_s, r.read1.p50_us, r.read1.p99_us, r.read64.pages_per_s,
                r.stored_per_byte);
  }
  std::printf("\nCPU per page at depth 64 (client + memory nodes; on shared cores their sum bounds throughput):\n");
  for (const SchemeReport& r : all) {
    std::printf("  %-12s writes %5.1f + %5.1f us   reads %5.1f + %5.1f us\n", r.redundancy.c_str(),
                r.write64.client_cpu_us, r.write64.nodes_cpu_us, r.read64.client_cpu_us, r.read64.nodes_cpu_us);
  }
  std::printf("\n%-12s %13s %13s %9s %10s %9s %14s\n", "ONE NODE DOWN", "HEALTHY P50", "DEGRADED P50", "RATIO",
              "REBUILT", "GB/S", "KILL->HEALTHY");
  for (const SchemeReport& r : all) {
    if (!r.degraded) continue;
    std::printf("%-12s %11.1fus %11.1fus %8.2fx %10s %9.2f %13.1fs\n", r.redundancy.c_str(), r.healthy_read.p50_us,
                r.degraded_read.p50_us, r.degraded_read.p50_us / r.healthy_read.p50_us,
                FormatSize(r.rebuilt_bytes).c_str(),
                r.rebuild_seconds > 0 ? r.rebuilt_bytes / r.rebuild_seconds / 1e9 : 0, r.full_redundancy_s);
  }
}

}  // namespace

int RunRedundancyBench(const RedundancyBenchOptions& o) {
  std::vector<SchemeReport> all;
  for (const std::string& scheme : o.schemes) {
    Result<SchemeReport> r = RunScheme(o, scheme);
    if (!r.ok()) {
      std::fprintf(stderr, "tessera bench: %s: %s\n", scheme.c_str(), r.status().ToString().c_str());
      return 1;
    }
    all.push_back(std::move(*r));
  }
  // Ratios against `none`, when it ran.
  nlohmann::json ratios = nlohmann::json::object();
  const SchemeReport* none = nullptr;
  for (const SchemeReport& r : all) none = r.redundancy == "none" ? &r : none;
  for (const SchemeReport& r : all) {
    if (none == nullptr || &r == none) continue;
    ratios[r.redundancy] = {{"write_pages_per_s_vs_none", r.write64.pages_per_s / none->write64.pages_per_s},
                            {"read_pages_per_s_vs_none", r.read64.pages_per_s / none->read64.pages_per_s},
                            {"write_p50_vs_none", r.write1.p50_us / none->write1.p50_us},
                            {"read_p50_vs_none", r.read1.p50_us / none->read1.p50_us}};
  }
  if (o.json) {
    nlohmann::json schemes = nlohmann::json::array();
    for (const SchemeReport& r : all) schemes.push_back(ToJson(r));
    std::printf("%s\n", nlohmann::json{{"memnodes", o.memnodes}, {"region_bytes", o.size_bytes}, {"schemes", schemes},
                                       {"ratios", ratios}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  Print(all);
  if (!ratios.empty()) {
    std::printf("\nagainst none, same run (depth 64 throughput; depth 1 p50):\n");
    for (auto& [scheme, v] : ratios.items()) {
      std::printf("  %-12s writes %.2fx  reads %.2fx  write p50 %.2fx  read p50 %.2fx\n", scheme.c_str(),
                  v["write_pages_per_s_vs_none"].get<double>(), v["read_pages_per_s_vs_none"].get<double>(),
                  v["write_p50_vs_none"].get<double>(), v["read_p50_vs_none"].get<double>());
    }
  }
  return 0;
}

}  // namespace tessera::cmd
