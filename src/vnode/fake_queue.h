// FakeQueue: an IoQueue over an in-memory page store, for testing the pager
// without a cluster. Completions arrive only when the pager reaps, after
// `latency_ns`, and in a shuffled order, so the pager meets the reorderings a
// real pool produces. The store outlives queues (FakePool is shared), and
// counts what reached it; HoldWrites is a sync point that keeps writes in
// flight for as long as a test needs. FakeStore is an ImageStore over a
// FakePool, counting the clones made of it.
//
// Thread-safety: FakePool and FakeStore are thread-safe; a FakeQueue belongs
// to the thread that drives it, like any IoQueue.
#pragma once

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "tessera/client.h"
#include "vnode/image_store.h"

namespace tessera::vnode {

class FakePool {
 public:
  explicit FakePool(size_t page_size) : page_size_(page_size) {}
  void Write(uint64_t page, const void* src) {
    std::lock_guard lk(mu_);
    auto& p = pages_[page];
    p.resize(page_size_);
    std::memcpy(p.data(), src, page_size_);
    ++writes_;
  }
  void Read(uint64_t page, void* dst) {
    std::lock_guard lk(mu_);
    auto it = pages_.find(page);
    if (it == pages_.end()) {
      std::memset(dst, 0, page_size_);
    } else {
      std::memcpy(dst, it->second.data(), page_size_);
    }
    ++reads_;
  }
  // The page reads back as zeros and holds no memory.
  void Zero(uint64_t page) {
    std::lock_guard lk(mu_);
    pages_.erase(page);
    ++zeroed_;
  }
  uint64_t zeroed() {
    std::lock_guard lk(mu_);
    return zeroed_;
  }
  // Read requests, however many pages each.
  void CountReadRequest() {
    std::lock_guard lk(mu_);
    ++read_requests_;
  }
  uint64_t read_requests() {
    std::lock_guard lk(mu_);
    return read_requests_;
  }
  bool holds(uint64_t page) {
    std::lock_guard lk(mu_);
    return pages_.count(page) != 0;
  }
  // Another pool holding these pages now (a fork's clone).
  std::shared_ptr<FakePool> Copy() {
    auto c = std::make_shared<FakePool>(page_size_);
    std::lock_guard lk(mu_);
    c->pages_ = pages_;
    return c;
  }
  uint64_t writes() {
    std::lock_guard lk(mu_);
    return writes_;
  }
  uint64_t reads() {
    std::lock_guard lk(mu_);
    return reads_;
  }
  // While held, no write completes: queues keep them in flight.
  void HoldWrites(bool hold) {
    std::lock_guard lk(mu_);
    hold_writes_ = hold;
  }
  bool writes_held() {
    std::lock_guard lk(mu_);
    return hold_writes_;
  }

 private:
  const size_t page_size_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::vector<uint8_t>> pages_;
  uint64_t writes_ = 0, reads_ = 0, zeroed_ = 0, read_requests_ = 0;
  bool hold_writes_ = false;
};

class FakeQueue final : public IoQueue {
 public:
  FakeQueue(std::shared_ptr<FakePool> pool, size_t page_size, uint64_t latency_ns, uint32_t seed = 1)
      : pool_(std::move(pool)), page_size_(page_size), latency_ns_(latency_ns), rng_(seed) {}

  Status Submit(std::span<const PageIo> ios) override {
    for (const PageIo& io : ios) pending_.push_back({io, NowNanos() + latency_ns_});
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override {
    uint64_t deadline = NowNanos() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
    size_t n = 0;
    for (;;) {
      n += CompleteDue(out);
      if (n >= std::min(min, pending_.size() + n)) return n;
      uint64_t now = NowNanos();
      if (now >= deadline) return TimedOut("fake queue: nothing completed");
      if (wake_fd_ >= 0) {
        pollfd p{wake_fd_, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) return n;
      }
    }
  }
  size_t outstanding() const override { return pending_.size(); }
  Status WakeOnReadable(int fd) override {
    wake_fd_ = fd;
    return Status::Ok();
  }

 private:
  struct Pending {
    PageIo io;
    uint64_t due_ns;
  };
  size_t CompleteDue(std::vector<Completion>* out) {
    uint64_t now = NowNanos();
    const bool hold = pool_->writes_held();
    std::vector<Pending> due;
    // Writes to one page complete in order (as IoQueue keeps one in flight per page).
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->due_ns <= now && !(hold && it->io.kind == PageIo::Kind::kWrite)) {
        due.push_back(*it);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    // Any order, except that I/Os of one page keep theirs (IoQueue runs one
    // write per page at a time).
    std::vector<size_t> order(due.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    std::unordered_map<uint64_t, std::vector<size_t>> slots_of_page;
    for (size_t pos = 0; pos < order.size(); ++pos) slots_of_page[due[order[pos]].io.first_page].push_back(pos);
    for (auto& [page, positions] : slots_of_page) {
      std::vector<size_t> originals;
      for (size_t pos : positions) originals.push_back(order[pos]);
      std::sort(originals.begin(), originals.end());
      for (size_t k = 0; k < positions.size(); ++k) order[positions[k]] = originals[k];
    }
    std::vector<Pending> shuffled;
    for (size_t i : order) shuffled.push_back(due[i]);
    due.swap(shuffled);
    for (const Pending& p : due) {
      if (p.io.kind == PageIo::Kind::kRead) pool_->CountReadRequest();
      for (uint32_t i = 0; i < p.io.page_count; ++i) {
        if (p.io.kind == PageIo::Kind::kZero) {
          pool_->Zero(p.io.first_page + i);
          continue;
        }
        auto* buf = static_cast<uint8_t*>(p.io.buffer) + i * page_size_;
        if (p.io.kind == PageIo::Kind::kRead) {
          pool_->Read(p.io.first_page + i, buf);
        } else {
          pool_->Write(p.io.first_page + i, buf);
        }
      }
      out->push_back({p.io.user_data, Status::Ok()});
    }
    return due.size();
  }

  std::shared_ptr<FakePool> pool_;
  size_t page_size_;
  uint64_t latency_ns_;
  std::mt19937 rng_;
  std::deque<Pending> pending_;
  int wake_fd_ = -1;
};

class FakeStore final : public ImageStore {
 public:
  FakeStore(std::shared_ptr<FakePool> pool, size_t page_size, uint64_t latency_ns,
            std::shared_ptr<std::atomic<int>> clones)
      : pool_(std::move(pool)), page_size_(page_size), latency_ns_(latency_ns), clones_(std::move(clones)) {}
  std::unique_ptr<IoQueue> NewQueue() override { return std::make_unique<FakeQueue>(pool_, page_size_, latency_ns_); }
  Result<std::unique_ptr<ImageStore>> Clone() override {
    clones_->fetch_add(1);
    return std::unique_ptr<ImageStore>(new FakeStore(pool_->Copy(), page_size_, latency_ns_, clones_));
  }
  const std::shared_ptr<FakePool>& pool() const { return pool_; }

 private:
  std::shared_ptr<FakePool> pool_;
  const size_t page_size_;
  const uint64_t latency_ns_;
  std::shared_ptr<std::atomic<int>> clones_;
};

}  // namespace tessera::vnode
