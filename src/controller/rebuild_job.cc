#include "controller/rebuild_job.h"

#include <chrono>
#include <cstring>
#include <map>

#include "common/clock.h"
#include "common/crc.h"
#include "ec/reed_solomon.h"
#include "ec/version_vote.h"
#include "net/rpc.h"
#include "proto/c2m.h"

namespace tessera::controller {
namespace {

constexpr uint32_t kBatchSlots = 256;
constexpr int kMixedRetries = 20;

// What one source share returned for a batch of slots.
// One share's slots of a batch: current and previous (undo) version of each.
struct SourceRead {
  std::atomic<bool> done{false};
  Status status;
  std::vector<uint64_t> versions[2];
  std::vector<uint8_t> data[2];
  const uint8_t* Slot(int which, uint32_t i, uint32_t slot_size) const {
    return data[which].data() + uint64_t{i} * slot_size;
  }
};

Status TakeSlot(SourceRead* r, int which, uint32_t i, uint32_t slot, const proto::c2m::PageData& p) {
  if (which == 1 && p.version == 0) return Status::Ok();  // no previous version
  if (p.data.size() != slot || Crc32c(p.data.data(), slot) != p.crc) {
    return Corruption("a fragment failed its checksum");
  }
  r->versions[which][i] = p.version;
  std::memcpy(r->data[which].data() + uint64_t{i} * slot, p.data.data(), slot);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<RebuildJob>> RebuildJob::Start(RebuildPlan plan) {
  std::unique_ptr<RebuildJob> job(new RebuildJob(std::move(plan)));
  TS_ASSIGN_OR_RETURN(job->transport_, net::NewTcpClientTransport({.wait = {.spin_us = 0},
                                                                   .connect_timeout_ms = job->plan_.timeout_ms}));
  if (job->plan_.redundancy.k > 1) {
    TS_ASSIGN_OR_RETURN(job->rs_, ec::ReedSolomon::Create(job->plan_.redundancy.k, job->plan_.redundancy.m));
  }
  job->started_ns_ = NowNanos();
  for (int i = 0; i < kWorkers; ++i) job->threads_.emplace_back([j = job.get()] { j->Work(); });
  return job;
}

RebuildJob::RebuildJob(RebuildPlan plan) : plan_(std::move(plan)), finished_(plan_.tasks.size(), 0) {
  for (const RebuildTask& t : plan_.tasks) total_bytes_ += uint64_t{t.slots} * plan_.slot_size;
}

RebuildJob::~RebuildJob() {
  stop_.store(true);
  for (auto& t : threads_) t.join();
}

uint64_t RebuildJob::bytes_per_second() const {
  uint64_t elapsed = NowNanos() - started_ns_;
  if (started_ns_ == 0 || elapsed < 1'000'000) return 0;
  return static_cast<uint64_t>(static_cast<double>(done_bytes()) * 1e9 / static_cast<double>(elapsed));
}

void RebuildJob::Work() {
  Conns conns;
  for (size_t i; !stop_.load() && (i = next_task_.fetch_add(1)) < plan_.tasks.size();) {
    Status s = RunTask(plan_.tasks[i], conns);
    std::lock_guard lk(mu_);
    if (s.ok()) {
      finished_[i] = 1;
    } else if (status_.ok()) {
      status_ = s.With("fragment " + std::to_string(plan_.tasks[i].fragment));
    }
  }
  if (working_.fetch_sub(1) == 1) {
    {
      std::lock_guard lk(mu_);
      if (stop_.load() && status_.ok()) status_ = Cancelled("rebuild stopped");
    }
    done_.store(true, std::memory_order_release);
  }
}

Status RebuildJob::RunTask(const RebuildTask& task, Conns& conns) {
  for (uint32_t first = 0; first < task.slots && !stop_.load(); first += kBatchSlots) {
    uint32_t count = std::min(kBatchSlots, task.slots - first);
    TS_RETURN_IF_ERROR(RebuildBatch(task, first, count, conns));
    done_bytes_.fetch_add(uint64_t{count} * plan_.slot_size, std::memory_order_relaxed);
    Pace();
  }
  return stop_.load() ? Cancelled("rebuild stopped") : Status::Ok();
}

Status RebuildJob::RebuildBatch(const RebuildTask& task, uint32_t first, uint32_t count, Conns& conns) {
  const int k = plan_.redundancy.k;
  const int width = plan_.redundancy.width();
  const uint32_t slot = plan_.slot_size;
  auto conn_to = [&](const std::string& addr) -> Result<std::shared_ptr<net::Connection>> {
    auto& c = conns[addr];
    if (!c || c->broken()) {
      TS_ASSIGN_OR_RETURN(c, transport_->Connect(addr));
    }
    return c;
  };
  for (int attempt = 0;; ++attempt) {
    // Read the batch's slots from every usable share of the stripe at once.
    std::vector<std::shared_ptr<SourceRead>> reads(width);
    for (int j = 0; j < width; ++j) {
      if (j == task.share || task.sources[j].empty()) continue;
      auto r = reads[j] = std::make_shared<SourceRead>();
      proto::c2m::ReadPages req{.region = plan_.region, .epoch = plan_.epoch, .flags = proto::c2m::kWithPrevious};
      for (uint32_t i = 0; i < count; ++i) req.pages.push_back({task.source_fragments[j], first + i});
      proto::Bytes body;
      proto::Writer w(&body);
      req.Encode(w);
      auto conn = conn_to(task.sources[j]);
      Status sent = conn.status();
      if (sent.ok()) {
        sent = (*conn)->Send(req.kOp, body, [r, count, slot](const Status& s, const proto::FrameHeader& h,
                                                             proto::ByteSpan b) {
          auto reply = s.ok() ? proto::DecodeReply<proto::c2m::ReadPagesReply>(h, b)
                              : Result<proto::c2m::ReadPagesReply>(s);
          r->status = reply.status();
          if (r->status.ok() && (reply->pages.size() != count || reply->previous.size() != count)) {
            r->status = ProtocolError("short reply");
          }
          for (int which = 0; which < 2 && r->status.ok(); ++which) {
            r->versions[which].assign(count, 0);
            r->data[which].resize(uint64_t{count} * slot);
          }
          for (uint32_t i = 0; r->status.ok() && i < count; ++i) {
            r->status = TakeSlot(r.get(), 0, i, slot, reply->pages[i]);
            if (r->status.ok()) r->status = TakeSlot(r.get(), 1, i, slot, reply->previous[i]);
          }
          r->done.store(true, std::memory_order_release);
        });
      }
      if (!sent.ok()) {
        r->status = sent;
        r->done.store(true);
      }
    }
    uint64_t deadline = NowNanos() + uint64_t(plan_.timeout_ms) * 1'000'000;
    TS_RETURN_IF_ERROR(transport_->WaitUntil([&] {
      for (auto& r : reads) {
        if (r && !r->done.load(std::memory_order_acquire)) return false;
      }
      return true;
    }, deadline));
    // Too few sources answered, or the map moved on (a source knows a newer
    // epoch): this batch cannot be rebuilt now. Failing it keeps the task
    // unfinished, so its fragment is not called ready with slots unwritten.
    int answered = 0;
    for (auto& r : reads) {
      if (!r) continue;
      if (r->status.code() == Code::kStaleMap) return r->status.With("read from a source");
      answered += r->status.ok();
    }
    if (answered < k) {
      return Unavailable("only " + std::to_string(answered) + " of the stripe's fragments could be read, " +
                         std::to_string(k) + " needed");
    }

    // Per slot: the newest version k shares hold (as current or previous),
    // and the lost share rebuilt from it.
    proto::c2m::WritePages out{.region = plan_.region, .epoch = plan_.epoch, .mode = proto::c2m::WriteMode::kCommit};
    std::vector<uint8_t> rebuilt(uint64_t{count} * slot);
    std::vector<uint8_t> scratch(uint64_t(width) * slot);
    uint32_t mixed = 0;
    for (uint32_t i = 0; i < count; ++i) {
      std::vector<ec::VersionOffer> offers;
      for (int j = 0; j < width; ++j) {
        if (!reads[j] || !reads[j]->status.ok()) continue;
        offers.push_back({j, reads[j]->versions[0][i]});
        if (reads[j]->versions[1][i] != 0) offers.push_back({j, reads[j]->versions[1][i]});
      }
      std::optional<ec::Vote> vote = ec::NewestWithQuorum(offers, k);
      if (!vote) {
        ++mixed;
        continue;
      }
      if (vote->version == 0) continue;  // never written: the replacement already reads as zeros
      uint8_t* frags[proto::Redundancy::kMaxWidth];
      bool present[proto::Redundancy::kMaxWidth];
      for (int j = 0; j < width; ++j) {
        frags[j] = scratch.data() + uint64_t(j) * slot;
        present[j] = (vote->shares >> j) & 1;
        if (present[j]) {
          int which = reads[j]->versions[0][i] == vote->version ? 0 : 1;
          std::memcpy(frags[j], reads[j]->Slot(which, i, slot), slot);
        }
      }
      if (k == 1) {
        for (int j = 0; j < width; ++j) {
          if (present[j]) std::memcpy(frags[task.share], frags[j], slot);
        }
      } else {
        present[task.share] = false;
        TS_RETURN_IF_ERROR(rs_->Reconstruct(slot, std::span(frags, width), std::span(present, width)));
      }
      uint8_t* dst = rebuilt.data() + uint64_t{i} * slot;
      std::memcpy(dst, frags[task.share], slot);
      out.pages.push_back(
          {{task.fragment, first + i}, vote->version, Crc32c(dst, slot), proto::ByteSpan(dst, slot)});
    }
    if (mixed > 0 && attempt < kMixedRetries) {
      // Writes are landing on these slots: read them again shortly.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    unresolved_.fetch_add(mixed);
    if (out.pages.empty()) return Status::Ok();
    TS_ASSIGN_OR_RETURN(auto target, conn_to(task.target));
    return net::Call(*transport_, *target, out, plan_.timeout_ms).status().With("write to " + task.target);
  }
}

void RebuildJob::Pace() {
  if (plan_.rate_limit_bytes_per_s == 0) return;
  double should_take_s = static_cast<double>(done_bytes()) / static_cast<double>(plan_.rate_limit_bytes_per_s);
  double took_s = static_cast<double>(NowNanos() - started_ns_) / 1e9;
  if (should_take_s > took_s) {
    std::this_thread::sleep_for(std::chrono::duration<double>(should_take_s - took_s));
  }
}

}  // namespace tessera::controller
