#include "cmd/bench_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "bench/memcached_baseline.h"
#include "bench/page_driver.h"
#include "bench/tcp_pingpong.h"
#include "cmd/local_cluster.h"
#include "common/clock.h"
#include "common/page_pattern.h"
#include "common/units.h"

namespace tessera::cmd {
namespace {

struct Case {
  std::string name;
  uint32_t depth;
  double ops_per_s;
  uint64_t p50_ns, p99_ns;
};

nlohmann::json ToJson(const Case& c) {
  return {{"name", c.name}, {"depth", c.depth}, {"ops_per_s", c.ops_per_s}, {"p50_us", c.p50_ns / 1e3},
          {"p99_us", c.p99_ns / 1e3}};
}

Case FromReport(const std::string& name, uint32_t depth, const bench::PhaseReport& r) {
  return {name, depth, r.pages_per_second(), r.latency.Percentile(50), r.latency.Percentile(99)};
}

void Progress(bool json, const std::string& what) {
  if (!json) std::fprintf(stderr, "bench: %s\n", what.c_str());
}

Result<std::vector<Case>> RunTessera(Client& client, const BenchOptions& o, double seconds) {
  const uint64_t bytes = o.quick ? (64ull << 20) : (256ull << 20);
  std::string name = "bench-" + std::to_string(getpid());
  TS_ASSIGN_OR_RETURN(auto region, client.CreateRegion(name, bytes));
  std::vector<Case> cases;
  Status s = [&]() -> Status {
    const uint32_t ps = region->page_size();
    const uint64_t pages = region->num_pages();
    auto fill = region->NewQueue({.depth = 128, .max_batch_pages = 32});
    uint64_t next = 0;
    TS_RETURN_IF_ERROR(bench::DrivePages(*region, *fill, {.kind = PageIo::Kind::kWrite, .depth = 128, .max_pages = pages},
                                         [&] { return next++; }, [&](uint8_t* b, uint64_t p) { FillPattern(b, ps, p, 0); },
                                         [](const uint8_t*, uint64_t) { return Status::Ok(); })
                           .status());
    std::mt19937_64 rng(1);
    for (uint32_t depth : {1u, 8u, 64u}) {
      for (PageIo::Kind kind : {PageIo::Kind::kRead, PageIo::Kind::kWrite}) {
        bool read = kind == PageIo::Kind::kRead;
        Progress(o.json, std::string("tessera 4 KiB ") + (read ? "reads" : "writes") + " at depth " + std::to_string(depth));
        auto q = region->NewQueue({.depth = depth, .max_batch_pages = depth});
        bench::DriveOptions d{.kind = kind, .depth = depth, .max_pages = UINT64_MAX,
                              .deadline_ns = NowNanos() + static_cast<uint64_t>(seconds * 1e9)};
        // Pages carry their number in the first 8 bytes (FillPattern): checking
        // it proves each read returned the page asked for, at a cost that
        // does not distort the measurement (the CRC32C check is in the library).
        TS_ASSIGN_OR_RETURN(auto r, bench::DrivePages(
                                        *region, *q, d, [&] { return rng() % pages; },
                                        [&](uint8_t* b, uint64_t p) { std::memcpy(b, &p, sizeof p); },
                                        [&](const uint8_t* b, uint64_t p) {
                                          uint64_t got;
                                          std::memcpy(&got, b, sizeof got);
                                          return got == p ? Status::Ok() : Corruption("page " + std::to_string(p));
                                        }));
        cases.push_back(FromReport(std::string("tessera_") + (read ? "read" : "write"), depth, r));
      }
    }
    return Status::Ok();
  }();
  region.reset();
  Status deleted = client.DeleteRegion(name);
  TS_RETURN_IF_ERROR(s);
  TS_RETURN_IF_ERROR(deleted);
  return cases;
}

Result<std::vector<Case>> RunBaselines(const BenchOptions& o, int connections, double seconds) {
  std::vector<Case> cases;
  Progress(o.json, "raw TCP ping-pong (16 B request, 4 KiB reply), waiting as Tessera's client and memory nodes do");
  TS_ASSIGN_OR_RETURN(auto pp, bench::RunTcpPingPong(o.quick ? 20000 : 60000, {.spin_us = o.client_spin_us},
                                                     {.spin_us = o.memnode_spin_us}));
  cases.push_back({"tcp_pingpong", 1, static_cast<double>(pp.latency.count()) / pp.seconds,
                   pp.latency.Percentile(50), pp.latency.Percentile(99)});
  Progress(o.json, "memcached 4 KiB GETs (" + std::to_string(connections) + " threads and connections)");
  TS_ASSIGN_OR_RETURN(auto mc, bench::Memcached::Start(connections, o.quick ? 8192 : 32768));
  for (uint32_t depth : {1u, 8u, 64u}) {
    int conns = std::min<int>(connections, static_cast<int>(depth));
    TS_ASSIGN_OR_RETURN(auto r, mc->RunGets(conns, depth, seconds));
    cases.push_back({"memcached_get", depth, static_cast<double>(r.ops) / r.seconds, r.latency.Percentile(50),
                     r.latency.Percentile(99)});
  }
  return cases;
}

int FailBench(const Status& s) {
  std::fprintf(stderr, "tessera bench: %s\n", s.ToString().c_str());
  return 1;
}

const Case* Find(const std::vector<Case>& cases, const std::string& name, uint32_t depth) {
  for (const Case& c : cases) {
    if (c.name == name && c.depth == depth) return &c;
  }
  return nullptr;
}

}  // namespace

int RunBench(const BenchOptions& o) {
  const double seconds = o.quick ? 1.0 : 4.0;
  std::unique_ptr<LocalCluster> cluster;
  std::string controller = o.controller;
  if (controller.empty()) {
    Progress(o.json, "starting a local cluster of " + std::to_string(o.memnodes) + " memory nodes");
    auto c = LocalCluster::Start({.memnodes = o.memnodes, .capacity_bytes = 1ull << 30,
                                   .memnode_spin_us = o.memnode_spin_us});
    if (!c.ok()) return FailBench(c.status());
    cluster = std::move(*c);
    controller = cluster->controller_address();
  }
  auto client = Client::Connect({.controller = controller, .spin_us = o.client_spin_us});
  if (!client.ok()) return FailBench(client.status());
  auto status = (*client)->GetClusterStatus();
  int nodes = status.ok() ? static_cast<int>(status->nodes.size()) : o.memnodes;
  auto cases = RunTessera(**client, o, seconds);
  if (!cases.ok()) return FailBench(cases.status());
  client->reset();
  cluster.reset();  // the baselines run on a quiet machine, as Tessera did
  auto base = RunBaselines(o, nodes, seconds);
  if (!base.ok()) return FailBench(base.status());
  std::vector<Case> all = *cases;
  all.insert(all.end(), base->begin(), base->end());

  const Case* pp = Find(all, "tcp_pingpong", 1);
  nlohmann::json ratios = {
      {"read_p50_vs_tcp_pingpong", static_cast<double>(Find(all, "tessera_read", 1)->p50_ns) / pp->p50_ns},
      {"write_p50_vs_tcp_pingpong", static_cast<double>(Find(all, "tessera_write", 1)->p50_ns) / pp->p50_ns},
  };
  for (uint32_t d : {1u, 8u, 64u}) {
    std::string key = d == 64 ? "batched_read_vs_memcached_get" : "read_vs_memcached_get_depth" + std::to_string(d);
    ratios[key] = Find(all, "tessera_read", d)->ops_per_s / Find(all, "memcached_get", d)->ops_per_s;
  }
  if (o.json) {
    nlohmann::json cs = nlohmann::json::array();
    for (const Case& c : all) cs.push_back(ToJson(c));
    std::printf("%s\n", nlohmann::json{{"memnodes", nodes}, {"connections", nodes}, {"cases", cs}, {"ratios", ratios}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf("\n%-16s %6s %14s %10s %10s\n", "CASE", "DEPTH", "OPS/S", "P50", "P99");
  for (const Case& c : all) {
    std::printf("%-16s %6u %14.0f %10s %10s\n", c.name.c_str(), c.depth, c.ops_per_s,
                FormatSeconds(c.p50_ns / 1e9).c_str(), FormatSeconds(c.p99_ns / 1e9).c_str());
  }
  std::printf("\nratios (Tessera / baseline; %d memory nodes, memcached with %d threads and up to %d connections):\n",
              nodes, nodes, nodes);
  for (auto& [k, v] : ratios.items()) std::printf("  %-34s %.2f\n", k.c_str(), v.get<double>());
  return 0;
}

}  // namespace tessera::cmd
