#include "cmd/region_store.h"

#include <chrono>
#include <cstdio>
#include <vector>

namespace tessera::cmd {

Leases::Leases(Client& client, uint32_t lease_ms) : client_(client), lease_ms_(lease_ms) {
  thread_ = std::thread([this] { Loop(); });
}

Leases::~Leases() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Leases::Add(const std::string& name) {
  std::lock_guard lk(mu_);
  names_.insert(name);
}

void Leases::Remove(const std::string& name) {
  std::lock_guard lk(mu_);
  names_.erase(name);
}

void Leases::Loop() {
  std::unique_lock lk(mu_);
  bool warned = false;
  while (!cv_.wait_for(lk, std::chrono::milliseconds(lease_ms_ / 4), [this] { return stop_; })) {
    std::vector<std::string> names(names_.begin(), names_.end());
    lk.unlock();
    Status s = names.empty() ? Status::Ok() : client_.RenewLeases(names);
    if (!s.ok() && !warned) {
      std::fprintf(stderr, "tessera run: cannot renew the leases of the program's regions: %s\n", s.ToString().c_str());
    }
    warned = !s.ok();
    lk.lock();
  }
}

RegionStore::RegionStore(Client& client, Leases& leases, std::unique_ptr<Region> region, std::string layout,
                         bool owned, std::shared_ptr<Made> made)
    : client_(client), leases_(leases), region_(std::move(region)), layout_(std::move(layout)), owned_(owned),
      made_(std::move(made)) {}

RegionStore::~RegionStore() {
  if (!owned_) return;
  const std::string name = region_->name();
  region_.reset();
  leases_.Remove(name);
  if (Status s = client_.DeleteRegion(name); !s.ok()) {
    std::fprintf(stderr, "tessera run: could not delete region %s: %s\n", name.c_str(), s.ToString().c_str());
  }
}

std::unique_ptr<IoQueue> RegionStore::NewQueue() { return region_->NewQueue({.depth = 128}); }

Result<std::unique_ptr<vnode::ImageStore>> RegionStore::Clone() {
  const std::string name = region_->name() + "-fork" + std::to_string(made_->copies.fetch_add(1) + 1);
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Region> copy, client_.CloneRegion(region_->name(), name, leases_.lease_ms()));
  return Own(std::move(copy));
}

Result<std::unique_ptr<vnode::ImageStore>> RegionStore::Fresh() {
  const std::string name = region_->name() + "-image" + std::to_string(made_->fresh.fetch_add(1) + 1);
  const RegionOptions o{.page_size = region_->page_size(), .redundancy = region_->redundancy(), .layout = layout_,
                        .lease_ms = leases_.lease_ms()};
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Region> fresh,
                      client_.CreateRegion(name, region_->num_pages() * region_->page_size(), o));
  return Own(std::move(fresh));
}

std::unique_ptr<vnode::ImageStore> RegionStore::Own(std::unique_ptr<Region> region) {
  leases_.Add(region->name());
  return std::unique_ptr<vnode::ImageStore>(new RegionStore(client_, leases_, std::move(region), layout_, true, made_));
}

}  // namespace tessera::cmd
