// tessera: one binary for every role. main() only parses flags and hands them
// to the subcommand's Run function.
#include <CLI/CLI.hpp>

#include "cmd/bench_cmd.h"
#include "cmd/cluster_cmds.h"
#include "cmd/daemons.h"
#include "cmd/redundancy_bench.h"
#include "cmd/run_cmd.h"
#include "cmd/run_file.h"
#include "cmd/signals.h"
#include "cmd/toml_config.h"
#include "cmd/workload.h"
#include "common/log.h"
#include "common/units.h"
#include "proto/redundancy.h"

namespace {

// CLI11 validator for sizes such as 512M or 2G.
struct SizeValidator : CLI::Validator {
  SizeValidator() {
    name_ = "SIZE";
    func_ = [](std::string& s) {
      auto r = tessera::ParseSize(s);
      return r.ok() ? std::string() : r.status().message();
    };
  }
};

uint64_t Bytes(const std::string& s) { return *tessera::ParseSize(s); }

}  // namespace

int main(int argc, char** argv) {
  tessera::cmd::SignalWaiter signals;
  CLI::App app{"Tessera: disaggregated memory in user space"};
  app.require_subcommand(1);
  // Every subcommand's flags may come from a TOML file (`tessera controller
  // --config FILE`): the option is the main app's, reached through fallthrough.
  auto toml = std::make_shared<tessera::cmd::TomlConfig>(&app);
  app.config_formatter(toml);
  app.set_config("--config", "", "A TOML file of the subcommand's options by long name (flags given win)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.fallthrough();
  bool print_config = false;
  std::string controller_flag, log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")->capture_default_str();

  tessera::controller::Options co;
  auto* ctl = app.add_subcommand("controller", "Run the controller (global memory manager) in the foreground");
  ctl->add_option("--listen", co.listen, "Address to listen on")->capture_default_str();
  ctl->add_option("--data-dir", co.data_dir, "Directory for the embedded store's log (without --etcd)")
      ->capture_default_str();
  ctl->add_option("--etcd", co.etcd, "etcd client endpoints host:port[,...]: keep the cluster's state there, "
                                     "with any number of controllers of which one leads")
      ->delimiter(',');
  ctl->add_option("--advertise", co.advertise, "Address clients and memory nodes use (default: the bound address)");
  ctl->add_option("--leader-ttl", co.leader_ttl_s, "Seconds a silent leader keeps leading before a standby takes over")
      ->check(CLI::Range(1, 60))->capture_default_str();
  ctl->add_option("--member-ttl", co.member_ttl_s,
                  "With --etcd: seconds a memory node killed or cut off stays alive before its rebuild starts")
      ->check(CLI::Range(1, 60))->capture_default_str();
  ctl->add_option("--node-timeout-ms", co.node_timeout_ms, "Declare a node dead after this silence")
      ->capture_default_str();
  ctl->add_option("--pages-per-stripe", co.pages_per_stripe, "Placement unit in pages")
      ->check(CLI::Range(1u, 1u << 20))->capture_default_str();
  ctl->add_option("--rebuild-delay-ms", co.rebuild_delay_ms,
                  "Wait this long after a node is declared dead before rebuilding its fragments elsewhere")
      ->capture_default_str();
  std::string rebuild_rate = "0";
  ctl->add_option("--rebuild-rate", rebuild_rate, "Cap on rebuild traffic per second, e.g. 200M (0: none)")
      ->check(SizeValidator())->capture_default_str();
  ctl->add_flag("--print-config", print_config, "Print these options as a --config file and exit")
      ->configurable(false);

  tessera::memnode::Options mo;
  std::string mem_capacity = "1G";
  auto* mem = app.add_subcommand("memnode", "Run a memory node in the foreground");
  mem->add_option("--listen", mo.listen, "Address to listen on")->capture_default_str();
  mem->add_option("--advertise", mo.advertise, "Address clients should use (default: the bound address)");
  mem->add_option("--controller", mo.controller, "Controller addresses host:port[,...] (one leads)")->required();
  mem->add_option("--capacity", mem_capacity, "DRAM this node may hand out")->check(SizeValidator())
      ->capture_default_str();
  mem->add_option("--heartbeat-ms", mo.heartbeat_ms, "Heartbeat interval")->capture_default_str();
  std::string mem_undo = "256M";
  mem->add_option("--undo", mem_undo, "Memory for undo copies of unfinished writes (the write hole)")
      ->check(SizeValidator())->capture_default_str();
  mem->add_option("--orphan-ms", mo.orphan_ms,
                  "A write unfinished this long may be rolled back by another writer")->capture_default_str();
  mem->add_option("--max-clock-ahead-ms", mo.max_clock_ahead_ms,
                  "Refuse a write whose version (its writer's clock) is this far ahead of this node's clock")
      ->check(CLI::Range(1u, 86'400'000u))->capture_default_str();
  mem->add_option("--domain", mo.domain, "Failure domain label (rack, host): a stripe avoids two fragments in one");
  mem->add_option("--spin-us", mo.wait.spin_us, "Busy-poll this long after a request before sleeping (0: never)")
      ->capture_default_str();
  mem->add_flag("--print-config", print_config, "Print these options as a --config file and exit")
      ->configurable(false);

  tessera::cmd::LocalClusterOptions up_opts{.controller_listen = "127.0.0.1:7070", .quiet = false};
  std::string up_capacity = "1G";
  auto* up = app.add_subcommand("up", "Run a local cluster (controller + memory nodes) in the foreground");
  up->add_option("--memnodes", up_opts.memnodes, "Memory nodes to start")->check(CLI::Range(1, 64))
      ->capture_default_str();
  up->add_option("--capacity", up_capacity, "DRAM per memory node")->check(SizeValidator())->capture_default_str();
  up->add_option("--listen", up_opts.controller_listen, "Controller address")->capture_default_str();
  up->add_option("--data-dir", up_opts.data_dir, "Controller data directory (default: a temporary one)");

  bool json = false;
  auto* status = app.add_subcommand("status", "Show memory nodes, capacity and regions");
  status->add_option("--controller", controller_flag, "Controller addresses host:port[,...] (default: the running 'tessera up')");
  status->add_flag("--json", json, "Machine-readable output");

  auto* region = app.add_subcommand("region", "Create, list and remove regions");
  region->require_subcommand(1);
  region->add_option("--controller", controller_flag, "Controller addresses host:port[,...] (default: the running 'tessera up')");
  std::string region_name, region_size;
  tessera::RegionOptions region_opts{.redundancy = "ec:4+2"};
  auto* rcreate = region->add_subcommand("create", "Create a region");
  rcreate->add_option("name", region_name, "Region name")->required();
  rcreate->add_option("size", region_size, "Size, e.g. 512M")->required()->check(SizeValidator());
  rcreate->add_option("--page-size", region_opts.page_size, "Page size in bytes")->capture_default_str();
  rcreate->add_option("--redundancy", region_opts.redundancy, "none, replicas:N or ec:K+M (needs K+M memory nodes)")
      ->capture_default_str();
  auto* rls = region->add_subcommand("ls", "List regions");
  rls->add_flag("--json", json, "Machine-readable output");
  auto* rrm = region->add_subcommand("rm", "Delete a region and free its memory");
  rrm->add_option("name", region_name, "Region name")->required();

  tessera::cmd::BenchOptions bo;
  auto* bench = app.add_subcommand("bench", "Benchmark page I/O against raw TCP and memcached");
  bench->add_option("--controller", bo.controller, "Use this cluster instead of starting one");
  bench->add_option("--memnodes", bo.memnodes, "Memory nodes of the cluster it starts")->capture_default_str();
  bench->add_flag("--quick", bo.quick, "A short run (under 20 s)");
  bench->add_option("--memnode-spin-us", bo.memnode_spin_us, "Memory nodes' busy-poll budget")->capture_default_str();
  bench->add_option("--client-spin-us", bo.client_spin_us, "The client's busy-poll budget")->capture_default_str();
  bench->add_flag("--json", bo.json, "Machine-readable output");
  std::string bench_redundancy, bench_size = "1G";
  bench->add_option("--redundancy", bench_redundancy,
                    "Compare redundancy schemes instead, e.g. none,replicas:2,replicas:3,ec:4+2,ec:8+3 "
                    "(latency, throughput, stored bytes, degraded reads, rebuild)");
  bench->add_option("--size", bench_size, "With --redundancy: the region per scheme")->check(SizeValidator())
      ->capture_default_str();

  tessera::cmd::LocalClusterOptions demo_cluster;
  tessera::cmd::WorkloadOptions work;
  std::string demo_capacity = "1G", demo_size = "1G";
  auto* demo = app.add_subcommand("demo", "Start a local cluster, write and verify pages, print a summary, stop");
  demo->add_option("--memnodes", demo_cluster.memnodes, "Memory nodes")->check(CLI::Range(1, 64))->capture_default_str();
  demo->add_option("--capacity", demo_capacity, "DRAM per memory node")->check(SizeValidator())->capture_default_str();
  demo->add_option("--size", demo_size, "Bytes of pages to write and read back")->check(SizeValidator())
      ->capture_default_str();
  demo->add_option("--redundancy", work.redundancy, "none, replicas:N or ec:K+M")->capture_default_str();
  bool demo_no_loss = false;
  demo->add_flag("--no-loss", demo_no_loss, "Skip killing a memory node after the first pass");
  demo->add_option("--depth", work.depth, "Pages in flight")->check(CLI::Range(1u, 4096u))->capture_default_str();

  tessera::cmd::RunOptions run_opts;
  std::string run_cache = "1G", run_heap = "8G";
  auto* run = app.add_subcommand("run", "Run a program with its memory in the pool: tessera run [OPTIONS] -- PROGRAM ARGS...");
  run->add_option("--cache", run_cache, "Local memory the program's heap may use")->check(SizeValidator())
      ->capture_default_str();
  run->add_option("--redundancy", run_opts.redundancy, "none, replicas:N or ec:K+M")->capture_default_str();
  run->add_option("--layout", run_opts.layout,
                  "auto, split, or span (ec only: each page whole on one memory node, a fault one round trip); "
                  "auto: span for ec, split otherwise")
      ->check(CLI::IsMember({"auto", "split", "span"}))
      ->capture_default_str();
  run->add_option("--controller", run_opts.controller, "Use this cluster (default: start an embedded one)");
  run->add_option("--heap", run_heap, "Address space for the program's heap in the pool")->check(SizeValidator())
      ->capture_default_str();
  run->add_option("--stats-json", run_opts.stats_json, "Also write the summary here, as JSON");
  run->add_option("--lease-ms", run_opts.lease_ms,
                  "If tessera run is killed, the controller deletes its regions after this long")
      ->capture_default_str();
  bool run_no_prefetch = false;
  run->add_flag("--no-prefetch", run_no_prefetch, "Fetch pages only when touched");
  run->add_option("program", run_opts.argv, "The program and its arguments (after --)")->required();

  CLI11_PARSE(app, argc, argv);
  tessera::log::ToStderr(log_level);
  if (print_config) {
    std::fputs(toml->to_config(*ctl ? ctl : mem, true, true, "").c_str(), stdout);
    return 0;
  }

  if (*ctl) {
    co.rebuild_rate_limit = Bytes(rebuild_rate);
    return tessera::cmd::RunController(co, signals);
  }
  if (*mem) {
    mo.capacity_bytes = Bytes(mem_capacity);
    mo.undo_bytes = Bytes(mem_undo);
    return tessera::cmd::RunMemnode(mo, signals);
  }
  if (*up) {
    up_opts.capacity_bytes = Bytes(up_capacity);
    return tessera::cmd::RunUp(up_opts, signals);
  }
  if (*run) {
    run_opts.cache_bytes = Bytes(run_cache);
    run_opts.heap_bytes = Bytes(run_heap);
    run_opts.prefetch = !run_no_prefetch;
    return tessera::cmd::RunProgram(run_opts, signals);
  }
  std::string controller = tessera::cmd::ResolveController(controller_flag);
  if (*status) return tessera::cmd::RunStatus(controller, json);
  if (*rcreate) return tessera::cmd::RunRegionCreate(controller, region_name, region_size, region_opts);
  if (*rls) return tessera::cmd::RunRegionList(controller, json);
  if (*rrm) return tessera::cmd::RunRegionRemove(controller, region_name);
  if (*bench && !bench_redundancy.empty()) {
    tessera::cmd::RedundancyBenchOptions ro{.size_bytes = Bytes(bench_size), .json = bo.json};
    if (bo.quick) ro.seconds = 1.0;
    int widest = 1;
    for (size_t at = 0; at <= bench_redundancy.size();) {
      size_t comma = std::min(bench_redundancy.find(',', at), bench_redundancy.size());
      std::string scheme = bench_redundancy.substr(at, comma - at);
      auto parsed = tessera::proto::ParseRedundancy(scheme);
      if (!parsed.ok()) {
        std::fprintf(stderr, "tessera bench: --redundancy: %s\n", parsed.status().ToString().c_str());
        return 2;
      }
      widest = std::max(widest, parsed->width());
      ro.schemes.push_back(parsed->ToString());
      at = comma + 1;
    }
    // Every scheme on a cluster of the same size: the widest stripe and a
    // node to rebuild onto.
    ro.memnodes = std::max(7, widest + 1);
    return tessera::cmd::RunRedundancyBench(ro);
  }
  if (*bench) return tessera::cmd::RunBench(bo);
  if (*demo) {
    demo_cluster.capacity_bytes = Bytes(demo_capacity);
    work.size_bytes = Bytes(demo_size);
    auto redundancy = tessera::proto::ParseRedundancy(work.redundancy);
    if (!redundancy.ok()) {
      std::fprintf(stderr, "tessera demo: %s\n", redundancy.status().ToString().c_str());
      return 1;
    }
    // A region without redundancy has no loss phase: a lost node would take pages with it.
    return tessera::cmd::RunDemo(demo_cluster, work, !demo_no_loss && redundancy->tolerates() > 0);
  }
  return 1;
}
