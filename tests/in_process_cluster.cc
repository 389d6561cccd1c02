#include "tests/in_process_cluster.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "common/check.h"
#include "tessera/client.h"

namespace tessera::testing {

InProcessCluster::InProcessCluster(const ClusterOptions& options) : options_(options) {
  char tmpl[] = "/tmp/tessera-test-XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  data_dir_ = tmpl;
  StartController("127.0.0.1:0");
  for (int i = 0; i < options_.memnodes; ++i) {
    memnode::Options mo{.controller = controller_->address(), .capacity_bytes = options_.capacity_bytes,
                        .heartbeat_ms = options_.heartbeat_ms};
    auto m = memnode::Memnode::Start(mo);
    CHECK(m.ok()) << m.status().ToString();
    memnodes_.push_back(std::move(*m));
    memnode_threads_.emplace_back([raw = memnodes_.back().get()] { CHECK_OK(raw->Run()); });
  }
  WaitForNodes();
}

std::string InProcessCluster::KillMemnode(int i) {
  std::string addr = memnodes_[i]->address();
  memnodes_[i]->Stop();
  memnode_threads_[i].join();
  memnodes_[i].reset();
  return addr;
}

int InProcessCluster::MemnodeAt(const std::string& address) const {
  for (size_t i = 0; i < memnodes_.size(); ++i) {
    if (memnodes_[i] && memnodes_[i]->address() == address) return static_cast<int>(i);
  }
  return -1;
}

InProcessCluster::~InProcessCluster() {
  // The controller first, so it does not see the nodes go and start repairs.
  controller_->Stop();
  controller_thread_.join();
  controller_.reset();
  for (auto& m : memnodes_) {
    if (m) m->Stop();
  }
  for (auto& t : memnode_threads_) {
    if (t.joinable()) t.join();
  }
  memnodes_.clear();
  std::filesystem::remove_all(data_dir_);
}

void InProcessCluster::StartController(const std::string& listen) {
  controller::Options co{.listen = listen, .data_dir = data_dir_, .node_timeout_ms = options_.node_timeout_ms,
                         .pages_per_stripe = options_.pages_per_stripe, .rebuild_delay_ms = options_.rebuild_delay_ms};
  auto c = controller::Controller::Start(co);
  CHECK(c.ok()) << c.status().ToString();
  controller_ = std::move(*c);
  controller_thread_ = std::thread([raw = controller_.get()] { CHECK_OK(raw->Run()); });
}

void InProcessCluster::RestartController() {
  std::string addr = controller_->address();
  controller_->Stop();
  controller_thread_.join();
  controller_.reset();
  StartController(addr);
}

void InProcessCluster::WaitForNodes() {
  auto client = Client::Connect({.controller = controller_address()});
  CHECK(client.ok()) << client.status().ToString();
  for (int tries = 0; tries < 500; ++tries) {
    auto s = (*client)->GetClusterStatus();
    int alive = 0;
    if (s.ok()) {
      for (auto& n : s->nodes) alive += n.alive;
    }
    if (alive >= static_cast<int>(std::count_if(memnodes_.begin(), memnodes_.end(), [](auto& m) { return m != nullptr; }))) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(false) << "memory nodes did not register within 5 s";
}

}  // namespace tessera::testing
