#include "ctlplane/etcd_cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/loopback_port.h"
#include "common/subprocess.h"
#include "ctlplane/etcd_store.h"

namespace tessera::ctlplane {
Result<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(Options options) {
  if (!options.placements.empty()) options.members = static_cast<int>(options.placements.size());
  if (options.members < 1) return InvalidArgument("an etcd cluster needs a member");
  std::unique_ptr<EtcdCluster> c(new EtcdCluster(std::move(options)));
  const Options& o = c->options_;
  std::vector<std::string> peers;
  std::string initial;
  for (int i = 0; i < o.members; ++i) {
    if (o.placements.empty()) {
      TS_ASSIGN_OR_RETURN(int client_port, PickLoopbackPort());
      TS_ASSIGN_OR_RETURN(int peer_port, PickLoopbackPort());
      c->endpoints_.push_back(o.host + ":" + std::to_string(client_port));
      peers.push_back("http://" + o.host + ":" + std::to_string(peer_port));
    } else {
      const std::string& address = o.placements[static_cast<size_t>(i)].address;
      c->endpoints_.push_back(address + ":2379");
      peers.push_back("http://" + address + ":2380");
    }
    initial += (i > 0 ? "," : "") + ("m" + std::to_string(i)) + "=" + peers.back();
  }
  for (int i = 0; i < o.members; ++i) {
    const std::string name = "m" + std::to_string(i), dir = o.dir + "/etcd-" + name;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::FromErrno(ec.value(), "create " + dir);
    const std::string client = "http://" + c->endpoints_[static_cast<size_t>(i)];
    std::vector<std::string> argv =
        o.placements.empty() ? std::vector<std::string>{} : o.placements[static_cast<size_t>(i)].prefix;
    argv.insert(argv.end(),
                {o.binary, "--name", name, "--data-dir", dir + "/data", "--listen-client-urls", client,
                 "--advertise-client-urls", client, "--listen-peer-urls", peers[static_cast<size_t>(i)],
                 "--initial-advertise-peer-urls", peers[static_cast<size_t>(i)], "--initial-cluster", initial,
                 "--initial-cluster-state", "new", "--heartbeat-interval", "20", "--election-timeout", "200"});
    Result<pid_t> pid = SpawnProcess(argv, dir + "/log");
    if (!pid.ok()) return pid.status().With("start etcd (Debian's etcd-server; scripts/setup.sh installs it)");
    c->pids_.push_back(*pid);
  }
  // Ready when a write goes through: the members have elected a leader.
  Status last = Unavailable("not tried");
  for (int attempt = 0; attempt < 200; ++attempt) {
    Result<std::unique_ptr<EtcdStore>> store = EtcdStore::Open({.endpoints = c->endpoints_, .timeout_ms = 1000});
    if (store.ok()) {
      last = (*store)->Put("/tessera/etcd-ready", "1", 0).status();
      if (last.ok()) return c;
    } else {
      last = store.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last.With("etcd did not come up in 20 s (logs under " + o.dir + ")");
}

EtcdCluster::~EtcdCluster() {
  for (pid_t pid : pids_) {
    if (pid > 0) StopProcess(pid, 0);
  }
}

void EtcdCluster::Kill(int i) {
  pid_t& pid = pids_.at(static_cast<size_t>(i));
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  pid = -1;
}

}  // namespace tessera::ctlplane
