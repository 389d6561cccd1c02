#include "cmd/cluster_cmds.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "cmd/run_file.h"
#include "common/units.h"
#include "tessera/client.h"

namespace tessera::cmd {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "tessera: %s\n", s.ToString().c_str());
  return 1;
}

Result<std::unique_ptr<Client>> ConnectTo(const std::string& controller) {
  auto c = Client::Connect({.controller = controller, .timeout_ms = 5000});
  if (!c.ok()) {
    return Status(c.status().code(), c.status().message() +
                                         " (start a cluster with 'tessera up', or pass --controller ADDR)");
  }
  return c;
}

nlohmann::json RegionsJson(const std::vector<RegionSummary>& regions) {
  nlohmann::json out = nlohmann::json::array();
  for (auto& r : regions) {
    out.push_back({{"id", r.id}, {"name", r.name}, {"page_size", r.page_size}, {"pages", r.num_pages},
                   {"bytes", r.num_pages * r.page_size}, {"nodes", r.node_count}, {"redundancy", r.redundancy},
                   {"health", r.health}, {"stripes", r.stripes}, {"degraded_stripes", r.degraded_stripes},
                   {"lost_stripes", r.lost_stripes},
                   {"rebuild", {{"done_bytes", r.rebuild_done_bytes}, {"total_bytes", r.rebuild_total_bytes},
                                {"bytes_per_s", r.rebuild_bytes_per_s}}}});
  }
  return out;
}

// "healthy", "degraded (3 of 40 stripes)", "rebuilding [#####.....] 52% ETA 3s".
std::string HealthLine(const RegionSummary& r) {
  std::string line = r.health;
  if (r.health == "rebuilding" && r.rebuild_total_bytes > 0) {
    double done = static_cast<double>(r.rebuild_done_bytes) / static_cast<double>(r.rebuild_total_bytes);
    int bars = static_cast<int>(done * 20);
    line += " [" + std::string(bars, '#') + std::string(20 - bars, '.') + "] " +
            std::to_string(static_cast<int>(done * 100)) + "%";
    if (r.rebuild_bytes_per_s > 0) {
      line += " ETA " + FormatSeconds(static_cast<double>(r.rebuild_total_bytes - r.rebuild_done_bytes) /
                                      static_cast<double>(r.rebuild_bytes_per_s));
    }
  } else if (r.health == "degraded") {
    line += " (" + std::to_string(r.degraded_stripes) + " of " + std::to_string(r.stripes) + " stripes)";
  } else if (r.health == "lost") {
    line += " (" + std::to_string(r.lost_stripes) + " of " + std::to_string(r.stripes) + " stripes lost)";
  }
  return line;
}

void PrintRegions(const std::vector<RegionSummary>& regions) {
  if (regions.empty()) {
    std::printf("no regions\n");
    return;
  }
  std::printf("%-24s %15s %12s %10s %6s %-11s %s\n", "REGION", "ID", "SIZE", "PAGES", "NODES", "REDUNDANCY",
              "HEALTH");
  for (auto& r : regions) {
    std::printf("%-24s %15llu %12s %10llu %6u %-11s %s\n", r.name.c_str(), static_cast<unsigned long long>(r.id),
                FormatSize(r.num_pages * r.page_size).c_str(), static_cast<unsigned long long>(r.num_pages),
                r.node_count, r.redundancy.c_str(), HealthLine(r).c_str());
  }
}

}  // namespace

int RunUp(const LocalClusterOptions& options, SignalWaiter& signals) {
  auto cluster = LocalCluster::Start(options);
  if (!cluster.ok()) return Fail(cluster.status());
  Status w = WriteRunFile((*cluster)->controller_address());
  if (!w.ok()) std::fprintf(stderr, "tessera: %s; other commands need --controller\n", w.ToString().c_str());
  auto client = ConnectTo((*cluster)->controller_address());
  if (!client.ok()) return Fail(client.status());
  auto status = (*client)->GetClusterStatus();
  if (!status.ok()) return Fail(status.status());
  std::printf("controller  %s  (data in %s)\n", (*cluster)->controller_address().c_str(),
              (*cluster)->data_dir().c_str());
  for (auto& n : status->nodes) {
    std::printf("memnode %-3llu %s  capacity %s\n", static_cast<unsigned long long>(n.id), n.address.c_str(),
                FormatSize(n.capacity_bytes).c_str());
  }
  std::printf("ready: try 'tessera status' in another terminal; Ctrl-C stops the cluster\n");
  std::fflush(stdout);
  std::atomic<bool> stop{false};
  signals.OnSignal([&] { stop = true; });
  while (!stop) {
    int st = 0;
    pid_t dead = (*cluster)->ReapExited(&st);
    if (dead > 0) {
      std::fprintf(stderr, "tessera: daemon pid %d exited (%s %d)\n", dead,
                   WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  signals.Disarm();
  std::printf("stopping the cluster\n");
  client->reset();
  cluster->reset();
  RemoveRunFile();
  return 0;
}

int RunStatus(const std::string& controller, bool json) {
  auto client = ConnectTo(controller);
  if (!client.ok()) return Fail(client.status());
  auto s = (*client)->GetClusterStatus();
  if (!s.ok()) return Fail(s.status());
  if (json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (auto& n : s->nodes) {
      nodes.push_back({{"id", n.id}, {"address", n.address}, {"alive", n.alive}, {"capacity", n.capacity_bytes},
                       {"used", n.used_bytes}, {"rss", n.rss_bytes}, {"ms_since_heartbeat", n.ms_since_heartbeat}});
    }
    std::printf("%s\n", nlohmann::json{{"controller", controller}, {"nodes", nodes},
                                       {"regions", RegionsJson(s->regions)}}.dump(2).c_str());
    return 0;
  }
  uint64_t cap = 0, used = 0;
  for (auto& n : s->nodes) {
    cap += n.alive ? n.capacity_bytes : 0;
    used += n.alive ? n.used_bytes : 0;
  }
  std::printf("controller %s: %zu memory node(s), %s of %s used, %zu region(s)\n\n", controller.c_str(),
              s->nodes.size(), FormatSize(used).c_str(), FormatSize(cap).c_str(), s->regions.size());
  std::printf("%-5s %-22s %-6s %12s %12s %12s %10s\n", "NODE", "ADDRESS", "STATE", "CAPACITY", "USED", "RSS",
              "HEARTBEAT");
  for (auto& n : s->nodes) {
    std::printf("%-5llu %-22s %-6s %12s %12s %12s %8ums\n", static_cast<unsigned long long>(n.id),
                n.address.c_str(), n.alive ? "alive" : "DEAD", FormatSize(n.capacity_bytes).c_str(),
                FormatSize(n.used_bytes).c_str(), FormatSize(n.rss_bytes).c_str(), n.ms_since_heartbeat);
  }
  std::printf("\n");
  PrintRegions(s->regions);
  return 0;
}

int RunRegionCreate(const std::string& controller, const std::string& name, const std::string& size,
                    const RegionOptions& options) {
  auto bytes = ParseSize(size);
  if (!bytes.ok()) return Fail(bytes.status());
  auto client = ConnectTo(controller);
  if (!client.ok()) return Fail(client.status());
  auto r = (*client)->CreateRegion(name, *bytes, options);
  if (!r.ok()) return Fail(r.status());
  std::set<std::string> nodes;
  for (auto& a : (*r)->NodeOfEachFragment()) nodes.insert(a);
  std::printf("created region '%s': %s in %llu pages of %u bytes, %s, on %zu memory node(s)\n", name.c_str(),
              FormatSize((*r)->num_pages() * (*r)->page_size()).c_str(),
              static_cast<unsigned long long>((*r)->num_pages()), (*r)->page_size(), (*r)->redundancy().c_str(),
              nodes.size());
  return 0;
}

int RunRegionList(const std::string& controller, bool json) {
  auto client = ConnectTo(controller);
  if (!client.ok()) return Fail(client.status());
  auto list = (*client)->ListRegions();
  if (!list.ok()) return Fail(list.status());
  if (json) {
    std::printf("%s\n", RegionsJson(*list).dump(2).c_str());
  } else {
    PrintRegions(*list);
  }
  return 0;
}

int RunRegionRemove(const std::string& controller, const std::string& name) {
  auto client = ConnectTo(controller);
  if (!client.ok()) return Fail(client.status());
  Status s = (*client)->DeleteRegion(name);
  if (!s.ok()) return Fail(s);
  std::printf("deleted region '%s'\n", name.c_str());
  return 0;
}

}  // namespace tessera::cmd
