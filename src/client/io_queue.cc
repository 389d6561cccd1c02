#include "client/io_queue.h"

#include <algorithm>

#include "common/clock.h"
#include "common/crc.h"
#include "proto/c2m.h"

namespace tessera::client {
namespace {

// A failure that says the node itself is gone, not just this request.
bool NodeFailure(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimedOut;
}

// How long settling a conflict may wait for the other writer (resolver.h).
constexpr int kResolveBudgetMs = 3000;

}  // namespace

IoQueueImpl::IoQueueImpl(MapSource* maps, NodePool* pool, VersionClock* clock, WriteTracker* writes,
                         const QueueOptions& options, int timeout_ms)
    : maps_(maps),
      pool_(pool),
      clock_(clock),
      writes_(writes),
      resolver_(pool, writes, kResolveBudgetMs, timeout_ms),
      options_(options),
      timeout_ms_(timeout_ms) {
  if (options_.depth == 0) options_.depth = 1;
  if (options_.max_batch_pages == 0) options_.max_batch_pages = 1;
  if (options_.max_batch_pages > proto::c2m::kMaxPagesPerRequest) {
    options_.max_batch_pages = proto::c2m::kMaxPagesPerRequest;
  }
}

IoQueueImpl::~IoQueueImpl() {
  if (wake_fd_ >= 0) pool_->transport().UnwatchFd(wake_fd_);
  Flush().IgnoreError();
  // Predicates run under the transport's lock: atomics only.
  auto idle = [&] { return batches_in_flight_.load() == 0 && retries_waiting_.load() == 0 && deferred_.empty(); };
  if (!Drive(idle, Deadline(timeout_ms_)).ok()) {
    AbortInFlight(Cancelled("I/O queue destroyed with requests in flight"));
  }
  CHECK(idle());
}

uint64_t IoQueueImpl::Deadline(int timeout_ms) const {
  return NowNanos() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
}

Status IoQueueImpl::Validate(const PageIo& io, const RegionMap& map) const {
  const auto& info = map.info();
  if (io.buffer == nullptr && io.kind != PageIo::Kind::kZero) return InvalidArgument("page I/O without a buffer");
  if (io.page_count == 0) return InvalidArgument("page I/O of zero pages");
  if (io.first_page >= info.num_pages || info.num_pages - io.first_page < io.page_count) {
    return InvalidArgument("pages [" + std::to_string(io.first_page) + ", " +
                           std::to_string(io.first_page + io.page_count) + ") are outside region '" + info.name +
                           "' of " + std::to_string(info.num_pages) + " pages");
  }
  return Status::Ok();
}

Status IoQueueImpl::Submit(std::span<const PageIo> ios) {
  std::shared_ptr<const RegionMap> map = maps_->Current();
  for (const PageIo& io : ios) TS_RETURN_IF_ERROR(Validate(io, *map));
  const uint32_t page_size = map->info().page_size;
  for (const PageIo& io : ios) {
    auto* op = new UserOp{io.user_data, io.page_count, Status::Ok()};
    outstanding_.fetch_add(1);
    // Zeros are a write without data: the page op has no buffer.
    const bool write = io.kind != PageIo::Kind::kRead;
    const PageIo::Kind kind = write ? PageIo::Kind::kWrite : PageIo::Kind::kRead;
    auto* data = static_cast<uint8_t*>(io.kind == PageIo::Kind::kZero ? nullptr : io.buffer);
    for (uint32_t i = 0; i < io.page_count; ++i) {
      Status room = WaitForRoom();
      if (!room.ok()) {
        std::lock_guard lk(mu_);
        for (uint32_t rest = i; rest < io.page_count; ++rest) {
          auto* page = new PageOp(op, kind, io.first_page + rest, nullptr, 0);
          page->Fail(room);
          pages_in_flight_.fetch_add(1);
          Advance(page);
        }
        return room;
      }
      uint64_t version = write ? clock_->Next() : 0;
      if (write) writes_->Reserve(version);
      auto* page = new PageOp(op, kind, io.first_page + i, data ? data + uint64_t{i} * page_size : nullptr, version);
      pages_in_flight_.fetch_add(1);
      if (write && !writes_->TryTake(page->page())) {
        deferred_.push_back(page);  // the page's last write is still in flight
        continue;
      }
      if (write) page->set_taken();
      page->Begin(map);
      TS_RETURN_IF_ERROR(Issue(page));
    }
  }
  return Status::Ok();
}

Status IoQueueImpl::SubmitShareRead(uint64_t page, int share, uint64_t expect, void* buffer, uint64_t user_data) {
  std::shared_ptr<const RegionMap> map = maps_->Current();
  TS_RETURN_IF_ERROR(Validate({.kind = PageIo::Kind::kRead, .first_page = page, .buffer = buffer}, *map));
  if (share < 0 || share >= map->codec().k()) {
    return InvalidArgument("share " + std::to_string(share) + " of a page of " + std::to_string(map->codec().k()) +
                           " data shares");
  }
  if (expect == 0) return InvalidArgument("a share read expects a version");
  TS_RETURN_IF_ERROR(WaitForRoom());
  outstanding_.fetch_add(1);
  pages_in_flight_.fetch_add(1);
  PageOp* op = PageOp::ShareRead(new UserOp{user_data, 1, Status::Ok()}, page, share, expect,
                                 static_cast<uint8_t*>(buffer));
  op->Begin(map);
  return Issue(op);
}

Status IoQueueImpl::Issue(PageOp* page) {
  std::vector<int> shares;
  {
    std::lock_guard lk(mu_);
    shares = page->PlanRound(*pool_, static_cast<int>(options_.read_extra));
    if (shares.empty()) {
      Advance(page);
      return Status::Ok();
    }
  }
  const RegionMap& map = page->map();
  for (int j : shares) {
    uint32_t fragment = map.FragmentOf(page->page(), j);
    const std::string& address = map.AddressOf(fragment);
    const BatchKey key{address, page->kind(), map.epoch(), page->with_previous()};
    auto& batch = open_[key];
    if (!batch) {
      batch.reset(new Batch{page->kind(), address, map.info().id, map.epoch(), map.codec().slot_size(),
                            page->with_previous(), {}, nullptr});
    }
    batch->targets.push_back({page, j, fragment, map.SlotOf(page->page())});
    ++open_shares_;
    // A batch is full at max_batch_pages pages' worth of bytes: with k > 1 a
    // share is 1/k of a page, so a request carries k times as many of them.
    uint64_t share_bytes = uint64_t{batch->slot_size} * batch->targets.size();
    if (share_bytes >= uint64_t{options_.max_batch_pages} * map.info().page_size ||
        batch->targets.size() >= proto::c2m::kMaxPagesPerRequest) {
      auto full = std::move(batch);
      open_.erase(key);
      open_shares_ -= full->targets.size();
      TS_RETURN_IF_ERROR(SendBatch(std::move(full)));
    }
  }
  return Status::Ok();
}

Status IoQueueImpl::WaitForRoom() {
  if (pages_in_flight_.load() < options_.depth) return Status::Ok();
  TS_RETURN_IF_ERROR(FlushIfDue());
  return Drive([&] { return pages_in_flight_.load() < options_.depth; }, Deadline(timeout_ms_));
}

Status IoQueueImpl::FlushIfDue() { return FlushDue() ? Flush() : Status::Ok(); }

Status IoQueueImpl::Flush() {
  Status first;
  while (!open_.empty()) {
    auto batch = std::move(open_.begin()->second);
    open_.erase(open_.begin());
    open_shares_ -= batch->targets.size();
    Status s = SendBatch(std::move(batch));
    if (first.ok()) first = s;
  }
  return first;
}

Status IoQueueImpl::SendBatch(std::unique_ptr<Batch> batch) {
  Batch* raw = batch.get();
  Result<std::shared_ptr<net::Connection>> conn = pool_->Get(batch->address);
  {
    std::lock_guard lk(mu_);
    sent_shares_.fetch_add(raw->targets.size());
    raw->sent_ns = NowNanos();
    in_flight_.emplace(raw, std::move(batch));
    batches_in_flight_.fetch_add(1);
    if (conn.ok()) raw->conn = *conn;
  }
  if (!conn.ok()) {
    OnReply(raw, conn.status(), {}, {});
    return Status::Ok();  // the pages carry the failure
  }
  proto::Bytes body;
  proto::Writer w(&body);
  proto::Op opcode;
  if (raw->kind == PageIo::Kind::kRead) {
    proto::c2m::ReadPages m{.region = raw->region,
                            .epoch = raw->epoch,
                            .flags = raw->with_previous ? proto::c2m::kWithPrevious : uint8_t{0}};
    m.pages.reserve(raw->targets.size());
    for (const Target& t : raw->targets) m.pages.push_back({t.fragment, t.slot});
    m.Encode(w);
    opcode = m.kOp;
  } else {
    proto::c2m::WritePages m{.region = raw->region,
                             .epoch = raw->epoch,
                             .writer = writes_->writer(),
                             .done_below = writes_->done_below()};
    m.pages.reserve(raw->targets.size());
    for (const Target& t : raw->targets) {
      const uint8_t* data = t.page->ShareData(t.share);
      if (data == nullptr) {  // zeros, sent as none
        m.pages.push_back({{t.fragment, t.slot}, t.page->version(), Crc32cOfZeros(raw->slot_size), {}});
        continue;
      }
      m.pages.push_back({{t.fragment, t.slot}, t.page->version(), Crc32c(data, raw->slot_size),
                         proto::ByteSpan(data, raw->slot_size)});
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
  const size_t n = batch->targets.size();
  Result<proto::c2m::ReadPagesReply> reply = proto::c2m::ReadPagesReply{};
  std::vector<ShareReply> written(batch->kind == PageIo::Kind::kWrite ? n : 0);
  uint64_t newest = 0;  // the newest version the reply shows: the clock joins it
  if (s.ok() && batch->kind == PageIo::Kind::kRead) {
    reply = proto::DecodeReply<proto::c2m::ReadPagesReply>(h, body);
    s = reply.status();
    if (s.ok() && (reply->pages.size() != n || (batch->with_previous && reply->previous.size() != n))) {
      s = ProtocolError("asked for " + std::to_string(n) + " pages, got " + std::to_string(reply->pages.size()));
    }
    for (const proto::c2m::PageData& p : s.ok() ? reply->pages : std::vector<proto::c2m::PageData>{}) {
      newest = std::max(newest, p.version);
    }
  } else if (s.ok()) {
    auto w = proto::DecodeReply<proto::c2m::WritePagesReply>(h, body);
    s = w.status();
    for (const proto::c2m::Unapplied& u : s.ok() ? w->unapplied : std::vector<proto::c2m::Unapplied>{}) {
      if (u.index >= n) continue;
      ShareReply& r = written[u.index];
      r.conflict = u.reason == proto::c2m::Unapplied::Reason::kConflict;
      r.superseded = u.reason == proto::c2m::Unapplied::Reason::kSuperseded;
      r.held = u.held;
      newest = std::max(newest, u.held);
    }
  }
  if (newest != 0) clock_->Observe(newest);
  if (!s.ok()) {
    s = s.With("memory node " + batch->address);
    if (NodeFailure(s) && !aborting_.load()) pool_->MarkDown(batch->address);
  }
  const uint32_t slot = batch->slot_size;
  auto intact = [slot](const proto::c2m::PageData& p) {
    return p.data.size() == slot && Crc32c(p.data.data(), p.data.size()) == p.crc;
  };
  std::lock_guard lk(mu_);
  for (size_t i = 0; i < n; ++i) {
    const Target& t = batch->targets[i];
    if (!s.ok()) {
      t.page->Record(t.share, s);
    } else if (batch->kind == PageIo::Kind::kWrite) {
      t.page->Record(t.share, s, written[i]);
    } else {
      const proto::c2m::PageData& p = reply->pages[i];
      Status share_ok = intact(p) ? Status::Ok()
                                  : Corruption("a fragment of page " + std::to_string(t.page->page()) +
                                               " failed its checksum on arrival from " + batch->address);
      ShareReply r{.version = p.version, .data = p.data};
      if (batch->with_previous && intact(reply->previous[i])) {
        r.has_previous = true;
        r.previous_version = reply->previous[i].version;
        r.previous = reply->previous[i].data;
      }
      t.page->Record(t.share, share_ok, r);
    }
    Advance(t.page);
  }
  sent_shares_.fetch_sub(n);
  in_flight_.erase(batch);
  batches_in_flight_.fetch_sub(1);
}

void IoQueueImpl::FailPage(PageOp* page, const Status& why) {
  std::lock_guard lk(mu_);
  page->Fail(why);
  Advance(page);
}

void IoQueueImpl::Advance(PageOp* page) {
  using State = PageOp::State;
  State st = page->state();
  if ((st == State::kSettled || st == State::kRetired) && !page->reported()) {
    page->set_reported();
    UserOp* op = page->user();
    if (!page->outcome().ok() && op->status.ok()) op->status = page->outcome();
    if (page->outcome().ok() && page->kind() == PageIo::Kind::kWrite) op->version = page->version();
    if (--op->pages_left == 0) {
      completions_.push_back({op->user_data, std::move(op->status), op->status.ok() ? op->version : 0});
      delete op;
      ready_.fetch_add(1);
    }
    pages_in_flight_.fetch_sub(1);
  }
  if (st == State::kRetired) {
    if (page->kind() == PageIo::Kind::kWrite && page->version() != 0) {
      writes_->Release(page->page(), page->version(), page->taken());
    }
    delete page;
  } else if (st == State::kNeedsRound || st == State::kNeedsMap || st == State::kNeedsResolve ||
             st == State::kNeedsVersion) {
    retries_.push_back(page);
    retries_waiting_.store(retries_.size());
  }
}

Status IoQueueImpl::WakeOnReadable(int fd) {
  if (wake_fd_ >= 0) pool_->transport().UnwatchFd(wake_fd_);
  wake_fd_ = fd;
  return Status::Ok();
}

Result<size_t> IoQueueImpl::Reap(std::vector<Completion>* out, size_t min, int timeout_ms) {
  TS_RETURN_IF_ERROR(FlushIfDue());
  min = std::min(min, outstanding_.load());
  // The watch outlives this call, and `woken_` is cleared only once a wait
  // ends: an edge between two Reaps makes the next one return at once, so
  // the caller's read of the fd (before each Reap) never misses an event.
  if (wake_fd_ >= 0 && ready_.load() < min) TS_RETURN_IF_ERROR(pool_->transport().WatchFd(wake_fd_, &woken_));
  TS_RETURN_IF_ERROR(Drive([&] { return ready_.load() >= min || woken_.load(); }, Deadline(timeout_ms)));
  woken_.store(false);
  std::lock_guard lk(mu_);
  size_t n = completions_.size();
  for (Completion& c : completions_) out->push_back(std::move(c));
  completions_.clear();
  ready_.fetch_sub(n);
  outstanding_.fetch_sub(n);
  return n;
}

void IoQueueImpl::AbortInFlight(const Status& why) {
  aborting_.store(true);
  std::set<std::shared_ptr<net::Connection>> conns;
  {
    std::lock_guard lk(mu_);
    for (auto& [raw, batch] : in_flight_) {
      if (batch->conn) conns.insert(batch->conn);
    }
  }
  for (auto& c : conns) c->Abort(why);
  ServiceRetries().IgnoreError();
  aborting_.store(false);
}

}  // namespace tessera::client
