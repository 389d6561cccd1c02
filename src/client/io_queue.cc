#include "client/io_queue.h"

#include <cstring>

#include "common/clock.h"
#include "common/crc.h"
#include "proto/c2m.h"

namespace tessera::client {

struct IoQueueImpl::Op {
  uint64_t user_data = 0;
  uint32_t pages_left = 0;  // guarded by mu_
  Status status;            // first error; guarded by mu_
};

IoQueueImpl::IoQueueImpl(const RegionMap* map, NodePool* pool, const QueueOptions& options, int timeout_ms)
    : map_(map), pool_(pool), options_(options), timeout_ms_(timeout_ms) {
  if (options_.depth == 0) options_.depth = 1;
  if (options_.max_batch_pages == 0) options_.max_batch_pages = 1;
  if (options_.max_batch_pages > proto::c2m::kMaxPagesPerRequest) {
    options_.max_batch_pages = proto::c2m::kMaxPagesPerRequest;
  }
}

IoQueueImpl::~IoQueueImpl() {
  Flush().IgnoreError();
  uint64_t deadline = NowNanos() + static_cast<uint64_t>(timeout_ms_) * 1'000'000;
  Status s = pool_->transport().WaitUntil([&] { return pages_in_flight_.load() == 0; }, deadline);
  if (!s.ok()) AbortInFlight(Cancelled("I/O queue destroyed with requests in flight"));
  std::lock_guard lk(mu_);
  CHECK(in_flight_.empty());
}

Status IoQueueImpl::Validate(const PageIo& io) const {
  const auto& info = map_->info();
  if (io.buffer == nullptr) return InvalidArgument("page I/O without a buffer");
  if (io.page_count == 0) return InvalidArgument("page I/O of zero pages");
  if (io.first_page >= info.num_pages || info.num_pages - io.first_page < io.page_count) {
    return InvalidArgument("pages [" + std::to_string(io.first_page) + ", " +
                           std::to_string(io.first_page + io.page_count) + ") are outside region '" + info.name +
                           "' of " + std::to_string(info.num_pages) + " pages");
  }
  return Status::Ok();
}

Status IoQueueImpl::Submit(std::span<const PageIo> ios) {
  for (const PageIo& io : ios) TS_RETURN_IF_ERROR(Validate(io));
  const uint32_t page_size = map_->info().page_size;
  for (const PageIo& io : ios) {
    Op* op = new Op{io.user_data, io.page_count, Status::Ok()};
    outstanding_.fetch_add(1);
    for (uint32_t i = 0; i < io.page_count; ++i) {
      Status room = WaitForRoom();
      if (!room.ok()) {
        AbandonPages(op, io.page_count - i, room);
        return room;
      }
      PageLocation loc = map_->Locate(io.first_page + i);
      auto& batch = open_[{loc.node, io.kind}];
      if (!batch) batch.reset(new Batch{io.kind, loc.node, {}, nullptr});
      batch->targets.push_back({loc.fragment, loc.slot, static_cast<uint8_t*>(io.buffer) + uint64_t{i} * page_size, op});
      pages_in_flight_.fetch_add(1);
      if (batch->targets.size() >= options_.max_batch_pages) {
        TS_RETURN_IF_ERROR(SendBatch(std::move(batch)));
        open_.erase({loc.node, io.kind});
      }
    }
  }
  return Status::Ok();
}

Status IoQueueImpl::WaitForRoom() {
  if (pages_in_flight_.load() < options_.depth) return Status::Ok();
  TS_RETURN_IF_ERROR(Flush());
  uint64_t deadline = NowNanos() + static_cast<uint64_t>(timeout_ms_) * 1'000'000;
  return pool_->transport().WaitUntil([&] { return pages_in_flight_.load() < options_.depth; }, deadline);
}

Status IoQueueImpl::Flush() {
  Status first;
  for (auto& [key, batch] : open_) {
    Status s = SendBatch(std::move(batch));
    if (first.ok()) first = s;
  }
  open_.clear();
  return first;
}

Status IoQueueImpl::SendBatch(std::unique_ptr<Batch> batch) {
  const uint32_t page_size = map_->info().page_size;
  Batch* raw = batch.get();
  Result<std::shared_ptr<net::Connection>> conn = pool_->Get(map_->addresses()[batch->node]);
  {
    std::lock_guard lk(mu_);
    if (!conn.ok()) {
      // Fails the pages here; the caller sees it in their completions.
      FinishTargets(*batch, conn.status());
      return Status::Ok();
    }
    batch->conn = *conn;
    in_flight_.emplace(raw, std::move(batch));
  }
  proto::Bytes body;
  proto::Writer w(&body);
  proto::Op opcode;
  if (raw->kind == PageIo::Kind::kRead) {
    proto::c2m::ReadPages m{.region = map_->info().id};
    m.pages.reserve(raw->targets.size());
    for (const Target& t : raw->targets) m.pages.push_back({t.fragment, t.slot});
    m.Encode(w);
    opcode = m.kOp;
  } else {
    proto::c2m::WritePages m{.region = map_->info().id};
    m.pages.reserve(raw->targets.size());
    for (const Target& t : raw->targets) {
      m.pages.push_back({{t.fragment, t.slot}, Crc32c(t.buf, page_size), proto::ByteSpan(t.buf, page_size)});
    }
    m.Encode(w);
    opcode = m.kOp;
  }
  Status sent = raw->conn->Send(opcode, body, [this, raw](const Status& s, const proto::FrameHeader& h,
                                                          proto::ByteSpan b) { OnReply(raw, s, h, b); });
  if (!sent.ok()) OnReply(raw, sent, {}, {});
  return Status::Ok();
}

void IoQueueImpl::OnReply(Batch* batch, const Status& status, const proto::FrameHeader& h, proto::ByteSpan body) {
  Status s = status;
  const uint32_t page_size = map_->info().page_size;
  const std::string& addr = map_->addresses()[batch->node];
  if (s.ok() && batch->kind == PageIo::Kind::kRead) {
    auto reply = proto::DecodeReply<proto::c2m::ReadPagesReply>(h, body);
    s = reply.status();
    if (s.ok() && reply->pages.size() != batch->targets.size()) {
      s = ProtocolError("asked for " + std::to_string(batch->targets.size()) + " pages, got " +
                        std::to_string(reply->pages.size()));
    }
    for (size_t i = 0; s.ok() && i < batch->targets.size(); ++i) {
      const proto::c2m::PageData& p = reply->pages[i];
      if (p.data.size() != page_size || Crc32c(p.data.data(), p.data.size()) != p.crc) {
        s = Corruption("page failed its checksum on arrival");
        break;
      }
      std::memcpy(batch->targets[i].buf, p.data.data(), page_size);
    }
  } else if (s.ok()) {
    s = proto::ReplyStatus(h, body);
  }
  if (!s.ok()) s = s.With("memory node " + addr);
  std::lock_guard lk(mu_);
  FinishTargets(*batch, s);
  in_flight_.erase(batch);
}

void IoQueueImpl::FinishPages(Op* op, uint32_t pages, const Status& status) {
  if (!status.ok() && op->status.ok()) op->status = status;
  op->pages_left -= pages;
  if (op->pages_left == 0) {
    completions_.push_back({op->user_data, std::move(op->status)});
    delete op;
    ready_.fetch_add(1);
  }
}

void IoQueueImpl::FinishTargets(const Batch& batch, const Status& status) {
  for (const Target& t : batch.targets) FinishPages(t.op, 1, status);
  pages_in_flight_.fetch_sub(batch.targets.size());
}

void IoQueueImpl::AbandonPages(Op* op, uint32_t pages, const Status& why) {
  std::lock_guard lk(mu_);
  FinishPages(op, pages, why);
}

Result<size_t> IoQueueImpl::Reap(std::vector<Completion>* out, size_t min, int timeout_ms) {
  TS_RETURN_IF_ERROR(Flush());
  min = std::min(min, outstanding_.load());
  if (ready_.load() < min) {
    uint64_t deadline = NowNanos() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
    TS_RETURN_IF_ERROR(pool_->transport().WaitUntil([&] { return ready_.load() >= min; }, deadline));
  }
  std::lock_guard lk(mu_);
  size_t n = completions_.size();
  for (Completion& c : completions_) out->push_back(std::move(c));
  completions_.clear();
  ready_.fetch_sub(n);
  outstanding_.fetch_sub(n);
  return n;
}

void IoQueueImpl::AbortInFlight(const Status& why) {
  std::set<std::shared_ptr<net::Connection>> conns;
  {
    std::lock_guard lk(mu_);
    for (auto& [raw, batch] : in_flight_) conns.insert(batch->conn);
  }
  for (auto& c : conns) c->Abort(why);
}

}  // namespace tessera::client
