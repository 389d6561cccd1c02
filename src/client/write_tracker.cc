#include "client/write_tracker.h"

#include <algorithm>
#include <utility>

namespace tessera::client {

void WriteTracker::Reserve(uint64_t version) {
  std::lock_guard lk(mu_);
  versions_.insert(version);
  highest_ = std::max(highest_, version);
  wrote_ = true;
}

bool WriteTracker::TryTake(uint64_t page) {
  std::lock_guard lk(mu_);
  return pages_.insert(page).second;
}

void WriteTracker::Release(uint64_t page, uint64_t version, bool taken) {
  {
    std::lock_guard lk(mu_);
    versions_.erase(version);
    if (taken) pages_.erase(page);
  }
  generation_.fetch_add(1, std::memory_order_release);
}

uint64_t WriteTracker::done_below() const {
  std::lock_guard lk(mu_);
  return versions_.empty() ? highest_ + 1 : *versions_.begin();
}

bool WriteTracker::TakeWroteSince() {
  std::lock_guard lk(mu_);
  return std::exchange(wrote_, false);
}

}  // namespace tessera::client
