// tessera-ctlplane-bench: control-plane operations per second — a region
// created and deleted, one pair at a time from one client — with the
// controller on its embedded store and on etcd (one member, and three), each
// with six memory nodes on loopback. Each create and each delete is a
// durable write of the controller's state (fdatasync in the embedded store;
// a raft commit in etcd) plus the memory nodes' allocation. Prints figures;
// fails only if a back end cannot be started.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cmd/local_cluster.h"
#include "ctlplane/etcd_cluster.h"
#include "tessera/client.h"

namespace tessera::cmd {
namespace {

struct Figures {
  uint64_t pairs = 0;
  double seconds = 0;
};

Result<Figures> CreateDeleteLoop(const std::string& controller, double seconds, const std::string& redundancy) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect({.controller = controller}));
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Figures f;
  for (;;) {
    f.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (f.seconds >= seconds) return f;
    const std::string name = "bench-" + std::to_string(f.pairs);
    {
      TS_ASSIGN_OR_RETURN(auto region, client->CreateRegion(name, 1 << 20, {.redundancy = redundancy}));
    }
    TS_RETURN_IF_ERROR(client->DeleteRegion(name));
    ++f.pairs;
  }
}

Status Measure(const std::string& label, LocalClusterOptions options, double seconds, const std::string& redundancy) {
  TS_ASSIGN_OR_RETURN(auto cluster, LocalCluster::Start(options));
  TS_ASSIGN_OR_RETURN(Figures f, CreateDeleteLoop(cluster->controller_address(), seconds, redundancy));
  const double per_s = f.pairs / f.seconds;
  std::printf("%-22s %8.0f create+delete/s  %8.0f ops/s  (%llu pairs in %.1f s, %.2f ms a pair)\n", label.c_str(),
              per_s, 2 * per_s, static_cast<unsigned long long>(f.pairs), f.seconds, 1000.0 / per_s);
  return Status::Ok();
}

int Main(int argc, char** argv) {
  CLI::App app{"Control-plane operations/s: region create+delete, embedded store vs etcd"};
  double seconds = 5;
  std::string redundancy = "ec:4+2", binary = TESSERA_BINARY, dir = "/tmp";
  app.add_option("--seconds", seconds, "How long each back end is measured")->capture_default_str();
  app.add_option("--redundancy", redundancy, "The regions' redundancy")->capture_default_str();
  app.add_option("--binary", binary, "The tessera binary to run the daemons with")->capture_default_str();
  app.add_option("--dir", dir, "Where the stores' data goes (its disk sets the embedded store's fsync cost)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  LocalClusterOptions base{.memnodes = 6, .capacity_bytes = 1ull << 30, .binary = binary};
  Status s = Measure("embedded store", base, seconds, redundancy);
  for (int members : {1, 3}) {
    if (!s.ok()) break;
    const std::string etcd_dir = dir + "/tessera-ctlplane-bench-etcd";
    std::filesystem::remove_all(etcd_dir);
    auto etcd = ctlplane::EtcdCluster::Start({.dir = etcd_dir, .members = members});
    if (!etcd.ok()) {
      s = etcd.status();
      break;
    }
    LocalClusterOptions o = base;
    for (const std::string& e : (*etcd)->endpoints()) o.etcd += (o.etcd.empty() ? "" : ",") + e;
    s = Measure("etcd, " + std::to_string(members) + " member" + (members > 1 ? "s" : ""), o, seconds, redundancy);
    etcd->reset();
    std::filesystem::remove_all(etcd_dir);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "tessera-ctlplane-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace tessera::cmd

int main(int argc, char** argv) { return tessera::cmd::Main(argc, argv); }
