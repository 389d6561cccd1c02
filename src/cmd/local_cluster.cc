#include "cmd/local_cluster.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/clock.h"
#include "common/loopback_port.h"
#include "common/subprocess.h"
#include "tessera/client.h"

namespace tessera::cmd {

Result<std::unique_ptr<LocalCluster>> LocalCluster::Start(const LocalClusterOptions& options) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->options_ = options;
  // Resolved, so that ps and top show the daemons as "tessera".
  std::error_code ec;
  auto resolved = std::filesystem::read_symlink(options.binary, ec);
  if (!ec && options.binary == "/proc/self/exe") c->options_.binary = resolved.string();
  if (options.data_dir.empty()) {
    char tmpl[] = "/tmp/tessera-cluster-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Status::FromErrno(errno, "mkdtemp");
    c->data_dir_ = tmpl;
    c->remove_data_dir_ = true;
  } else {
    c->data_dir_ = options.data_dir;
    std::error_code ec;
    std::filesystem::create_directories(c->data_dir_, ec);
    if (ec) return Status(Code::kIoError, "create " + c->data_dir_ + ": " + ec.message());
  }
  c->controller_address_ = options.controller_listen;
  if (c->controller_address_.ends_with(":0")) {
    TS_ASSIGN_OR_RETURN(c->controller_address_, PickLoopbackAddress());
  }
  TS_ASSIGN_OR_RETURN(pid_t ctl, c->SpawnController());
  c->pids_.push_back(ctl);
  // Memory nodes start once the controller listens, so none of them logs a
  // refused registration.
  TS_RETURN_IF_ERROR(c->WaitReady(0));
  for (int i = 0; i < options.memnodes; ++i) {
    TS_ASSIGN_OR_RETURN(std::string listen, PickLoopbackAddress());
    c->memnode_addresses_.push_back(listen);
    TS_ASSIGN_OR_RETURN(pid_t m, c->Spawn({"memnode", "--listen", listen, "--controller",
                                           c->controller_address_, "--capacity",
                                           std::to_string(options.capacity_bytes), "--heartbeat-ms",
                                           std::to_string(options.heartbeat_ms), "--spin-us",
                                           std::to_string(options.memnode_spin_us)},
                                          "memnode-" + std::to_string(i) + ".log"));
    c->pids_.push_back(m);
  }
  TS_RETURN_IF_ERROR(c->WaitReady(options.memnodes));
  return c;
}

size_t LocalCluster::MemnodeIndex(const std::string& address) const {
  for (size_t i = 0; i < memnode_addresses_.size(); ++i) {
    if (memnode_addresses_[i] == address) return i + 1;
  }
  return 0;
}

Result<pid_t> LocalCluster::SpawnController() {
  std::vector<std::string> args{"controller", "--listen", controller_address_, "--data-dir",
                                data_dir_ + "/controller"};
  if (!options_.etcd.empty()) args.insert(args.end(), {"--etcd", options_.etcd});
  return Spawn(args, "controller.log");
}

void LocalCluster::Kill(size_t i, int signal) {
  if (i >= pids_.size() || pids_[i] <= 0) return;
  kill(pids_[i], signal);
  if (signal == SIGKILL) {
    int status;
    waitpid(pids_[i], &status, 0);
    pids_[i] = -pids_[i];
  }
}

Status LocalCluster::RestartController() {
  if (pids_[0] > 0) return Internal("the controller is still running");
  TS_ASSIGN_OR_RETURN(pids_[0], SpawnController());
  int live = 0;
  for (size_t i = 1; i < pids_.size(); ++i) live += pids_[i] > 0;
  return WaitReady(live);
}

Result<pid_t> LocalCluster::Spawn(const std::vector<std::string>& args, const std::string& log_name) {
  std::vector<std::string> argv = {options_.binary};
  argv.insert(argv.end(), args.begin(), args.end());
  return SpawnProcess(argv, options_.quiet ? data_dir_ + "/" + log_name : "");
}

Status LocalCluster::WaitReady(int memnodes) {
  uint64_t deadline = NowNanos() + 15'000'000'000ull;
  Status last;
  while (NowNanos() < deadline) {
    int status = 0;
    pid_t dead = ReapExited(&status);
    if (dead > 0) {
      return Unavailable("a daemon (pid " + std::to_string(dead) + ") exited during start-up" + LogTails());
    }
    auto client = Client::Connect({.controller = controller_address_, .timeout_ms = 1000});
    if (client.ok()) {
      auto s = (*client)->GetClusterStatus();
      int alive = 0;
      if (s.ok()) {
        for (auto& n : s->nodes) alive += n.alive;
      }
      if (alive >= memnodes) return Status::Ok();
      last = s.ok() ? Unavailable(std::to_string(alive) + " of " + std::to_string(memnodes) + " memory nodes up")
                    : s.status();
    } else {
      last = client.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return TimedOut("the local cluster did not come up within 15 s: " + last.ToString() + LogTails());
}

std::string LocalCluster::LogTails() const {
  if (!options_.quiet) return "; its error is above";
  // The data directory may be removed when we return: quote the logs.
  std::string out;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_)) {
    if (entry.path().extension() != ".log") continue;
    std::ifstream f(entry.path());
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    for (size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) {
      if (lines[i].find("error") != std::string::npos || lines[i].find("warn") != std::string::npos) {
        out += "\n  " + entry.path().filename().string() + ": " + lines[i];
      }
    }
  }
  return out;
}

pid_t LocalCluster::ReapExited(int* status) {
  for (pid_t& p : pids_) {
    if (p <= 0) continue;
    pid_t r = waitpid(p, status, WNOHANG);
    if (r == p) {
      pid_t dead = p;
      p = -p;
      return dead;
    }
  }
  return 0;
}

void LocalCluster::Stop() {
  // Memory nodes first, so the controller does not log them as lost.
  for (size_t i = pids_.size(); i-- > 0;) {
    StopProcess(pids_[i], 5000);
    if (pids_[i] > 0) pids_[i] = -pids_[i];
  }
}

LocalCluster::~LocalCluster() {
  Stop();
  if (remove_data_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

}  // namespace tessera::cmd
