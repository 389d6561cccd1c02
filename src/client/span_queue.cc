#include "client/span_queue.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <string>

#include "common/check.h"
#include "common/clock.h"

namespace tessera::client {
namespace {

// Writes gathered before they are packed without waiting for a Flush: 64
// rows' worth bounds what the queue holds on to.
constexpr size_t kMaxPendingRows = 64;

}  // namespace

SpanQueue::SpanQueue(std::shared_ptr<SpanState> state, std::unique_ptr<IoQueueImpl> rows, uint32_t page_size,
                     int timeout_ms)
    : state_(std::move(state)), map_(&state_->map), rows_(std::move(rows)), page_size_(page_size),
      timeout_ms_(timeout_ms) {}

std::optional<SpanMap::Location> SpanQueue::Find(uint64_t page) const {
  std::lock_guard lk(state_->mu);
  return map_->Find(page);
}

Result<std::vector<SpanMap::RowWrite>> SpanQueue::Pack(const std::vector<uint64_t>& pages) {
  std::lock_guard lk(state_->mu);
  return map_->Pack(pages);
}

SpanQueue::~SpanQueue() {
  PackPending().IgnoreError();
  rows_.reset();  // waits for (or aborts) the row I/O, whose buffers inner_ holds
  std::set<Op*> orphans;
  for (auto& [tag, in] : inner_) {
    if (in.op) orphans.insert(in.op);
    for (Op* op : in.column_ops) {
      if (op) orphans.insert(op);
    }
  }
  for (Op* op : orphans) delete op;
}

Status SpanQueue::Submit(std::span<const PageIo> ios) {
  for (const PageIo& io : ios) {
    if (io.buffer == nullptr && io.kind != PageIo::Kind::kZero) return InvalidArgument("page I/O without a buffer");
    if (io.page_count == 0) return InvalidArgument("page I/O of zero pages");
    if (io.first_page >= map_->pages() || map_->pages() - io.first_page < io.page_count) {
      return InvalidArgument("pages [" + std::to_string(io.first_page) + ", " +
                             std::to_string(io.first_page + io.page_count) + ") are outside a span region of " +
                             std::to_string(map_->pages()) + " pages");
    }
  }
  for (const PageIo& io : ios) {
    auto* op = new Op{io.user_data, io.page_count, Status::Ok(), 0};
    ++outstanding_;
    if (io.kind == PageIo::Kind::kRead) {
      TS_RETURN_IF_ERROR(SubmitRead(io, op));
    } else if (io.kind == PageIo::Kind::kZero) {
      SubmitZero(io, op);
    } else {
      const auto* data = static_cast<const uint8_t*>(io.buffer);
      for (uint32_t i = 0; i < io.page_count; ++i) {
        const uint64_t page = io.first_page + i;
        // A page written twice goes in two packs, in order.
        if (pending_pages_.count(page) != 0) TS_RETURN_IF_ERROR(PackPending());
        pending_.push_back({page, data + uint64_t{i} * page_size_, op});
        pending_pages_.insert(page);
      }
      if (pending_.size() >= kMaxPendingRows * static_cast<size_t>(map_->k())) TS_RETURN_IF_ERROR(PackPending());
    }
  }
  return Status::Ok();
}

Status SpanQueue::SubmitRead(const PageIo& io, Op* op) {
  auto* buf = static_cast<uint8_t*>(io.buffer);
  for (uint32_t i = 0; i < io.page_count; ++i) {
    uint8_t* dst = buf + uint64_t{i} * page_size_;
    std::optional<SpanMap::Location> at = Find(io.first_page + i);
    if (!at) {
      std::memset(dst, 0, page_size_);
      PageDone(op, Status::Ok());
      continue;
    }
    const uint64_t tag = Tag({.kind = Inner::Kind::kRead, .op = op});
    Status s = rows_->SubmitShareRead(at->row, at->column, at->version, dst, tag);
    if (!s.ok()) {
      inner_.erase(tag);
      PageDone(op, s);
    }
  }
  return Status::Ok();
}

void SpanQueue::SubmitZero(const PageIo& io, Op* op) {
  for (uint32_t i = 0; i < io.page_count; ++i) {
    const uint64_t page = io.first_page + i;
    // A gathered write of the page must be packed before the zero: packs
    // are ordered, and the later one decides.
    if (pending_pages_.count(page) != 0) {
      Status s = PackPending();
      if (!s.ok()) {
        PageDone(op, s);
        continue;
      }
    }
    {
      std::lock_guard lk(state_->mu);
      map_->Zero(page);
    }
    PageDone(op, Status::Ok());
  }
}

Status SpanQueue::PackPending() {
  const uint64_t k = static_cast<uint64_t>(map_->k());
  const uint64_t reserve = std::max<uint64_t>(2, k - 1);
  size_t next = 0;
  while (next < pending_.size()) {
    // As many rows as are free beyond the reserve; none: wait for rows in
    // flight, or compact.
    if (map_->free_rows() <= reserve) {
      Status room = MakeRoom(reserve + 1);
      if (!room.ok()) {
        for (size_t i = next; i < pending_.size(); ++i) PageDone(pending_[i].op, room);
        break;  // the writes' completions carry it
      }
    }
    const size_t n = std::min<size_t>(pending_.size() - next, (map_->free_rows() - reserve) * k);
    std::vector<Write> writes(pending_.begin() + static_cast<long>(next), pending_.begin() + static_cast<long>(next + n));
    next += n;
    std::vector<uint64_t> pages;
    pages.reserve(n);
    for (const Write& w : writes) pages.push_back(w.page);
    Result<std::vector<SpanMap::RowWrite>> rows = Pack(pages);
    CHECK_OK(rows.status());  // distinct pages, and rows enough: checked above
    TS_RETURN_IF_ERROR(SendRows(writes, std::move(*rows)));
  }
  pending_.clear();
  pending_pages_.clear();
  return Status::Ok();
}

Status SpanQueue::SendRows(const std::vector<Write>& writes, std::vector<SpanMap::RowWrite> rows) {
  const size_t k = static_cast<size_t>(map_->k());
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t tag = Tag({.kind = Inner::Kind::kRow, .row = std::move(rows[i])});
    Inner& in = inner_.at(tag);
    in.data.assign(k * page_size_, 0);
    in.column_ops.assign(k, nullptr);
    for (size_t c = 0; c < k && i * k + c < writes.size(); ++c) {
      const Write& w = writes[i * k + c];
      std::memcpy(in.data.data() + c * page_size_, w.data, page_size_);
      in.column_ops[c] = w.op;
    }
    ++rows_in_flight_;
    PageIo io{.kind = PageIo::Kind::kWrite, .first_page = in.row.row, .page_count = 1, .buffer = in.data.data(),
              .user_data = tag};
    Status s = rows_->Submit({&io, 1});
    if (!s.ok()) Dispatch({tag, s, 0});
  }
  return Status::Ok();
}

Status SpanQueue::MakeRoom(uint64_t need) {
  while (map_->free_rows() < need) {
    if (rows_in_flight_ > 0) {
      // Rows landing free the rows their pages left.
      TS_RETURN_IF_ERROR(rows_->Flush());
      TS_RETURN_IF_ERROR(Pump(timeout_ms_).status());
      continue;
    }
    TS_RETURN_IF_ERROR(Compact(need));
  }
  return Status::Ok();
}

Status SpanQueue::Compact(uint64_t need) {
  const uint64_t k = static_cast<uint64_t>(map_->k());
  // Rows to empty: fewest live pages first, none of them about to be
  // written anyway, as long as their pages fit in the rows free now and
  // until emptying them gains what is needed.
  std::vector<uint64_t> chosen;
  uint64_t live = 0;
  for (uint64_t row : map_->CompactionCandidates(map_->k() - 1, map_->rows())) {
    std::vector<uint64_t> pages = map_->LivePages(row);
    if (pages.size() != static_cast<size_t>(map_->live(row))) continue;  // a write of one is in flight
    bool busy = false;
    for (uint64_t p : pages) busy = busy || pending_pages_.count(p) != 0;
    if (busy) continue;
    if ((live + pages.size() + k - 1) / k > map_->free_rows()) break;
    chosen.push_back(row);
    live += pages.size();
    const uint64_t gain = chosen.size() - (live + k - 1) / k;
    if (map_->free_rows() + gain >= need) break;
  }
  if (chosen.size() <= (live + k - 1) / k) {
    return OutOfCapacity("a span region has no room: " + std::to_string(map_->free_rows()) + " of " +
                         std::to_string(map_->rows()) + " rows free and none to compact (its slack is used up)");
  }
  size_t reading = 0;
  moves_done_ = 0;
  move_error_ = Status::Ok();
  rows_compacted_ += chosen.size();
  for (uint64_t row : chosen) {
    for (uint64_t page : map_->LivePages(row)) {
      SpanMap::Location at = *Find(page);
      const uint64_t tag = Tag({.kind = Inner::Kind::kMove, .data = std::vector<uint8_t>(page_size_), .page = page});
      Status s = rows_->SubmitShareRead(at.row, at.column, at.version, inner_.at(tag).data.data(), tag);
      if (!s.ok()) {
        inner_.erase(tag);
        if (move_error_.ok()) move_error_ = s;
        continue;  // the page stays where it is
      }
      ++reading;
    }
  }
  TS_RETURN_IF_ERROR(rows_->Flush());
  while (moves_done_ < reading) TS_RETURN_IF_ERROR(Pump(timeout_ms_).status());
  std::vector<Write> writes;
  std::vector<uint64_t> pages;
  for (auto& [page, data] : moves_) {
    writes.push_back({page, data.data(), nullptr});
    pages.push_back(page);
  }
  Result<std::vector<SpanMap::RowWrite>> rows = Pack(pages);
  Status sent = rows.ok() ? SendRows(writes, std::move(*rows)) : rows.status();
  moves_.clear();
  TS_RETURN_IF_ERROR(sent);
  // A page that could not be read keeps its row: trying again would choose
  // the same rows, so the writes waiting for room fail with the reason.
  if (!move_error_.ok()) return move_error_.With("compaction of a span region could not read a page it had to move");
  return Status::Ok();
}

Result<bool> SpanQueue::Pump(int timeout_ms) {
  std::vector<Completion> got;
  TS_ASSIGN_OR_RETURN(size_t n, rows_->Reap(&got, 1, timeout_ms));
  for (const Completion& c : got) Dispatch(c);
  return n > 0;
}

void SpanQueue::Dispatch(const Completion& c) {
  auto it = inner_.find(c.user_data);
  CHECK(it != inner_.end());
  Inner in = std::move(it->second);
  inner_.erase(it);
  switch (in.kind) {
    case Inner::Kind::kRead:
      PageDone(in.op, c.status);
      return;
    case Inner::Kind::kRow:
      --rows_in_flight_;
      {
        std::lock_guard lk(state_->mu);
        if (c.status.ok()) {
          map_->Landed(in.row, c.version);
        } else {
          map_->Failed(in.row);
        }
      }
      for (Op* op : in.column_ops) {
        if (op) PageDone(op, c.status, c.version);
      }
      return;
    case Inner::Kind::kMove:
      // A move that could not be read leaves its page where it is.
      ++moves_done_;
      if (c.status.ok()) {
        moves_.emplace_back(in.page, std::move(in.data));
      } else if (move_error_.ok()) {
        move_error_ = c.status;
      }
      return;
  }
}

void SpanQueue::PageDone(Op* op, const Status& s, uint64_t version) {
  if (!s.ok() && op->status.ok()) op->status = s;
  if (version != 0) op->version = version;
  if (--op->pages_left > 0) return;
  ready_.push_back({op->user_data, op->status, op->status.ok() ? op->version : 0});
  delete op;
}

uint64_t SpanQueue::Tag(Inner inner) {
  const uint64_t tag = next_tag_++;
  inner_.emplace(tag, std::move(inner));
  return tag;
}

Status SpanQueue::Flush() {
  TS_RETURN_IF_ERROR(PackPending());
  return rows_->Flush();
}

Result<size_t> SpanQueue::Reap(std::vector<Completion>* out, size_t min, int timeout_ms) {
  TS_RETURN_IF_ERROR(Flush());
  min = std::min(min, outstanding_);
  const uint64_t deadline = NowNanos() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
  while (ready_.size() < min) {
    const uint64_t now = NowNanos();
    const int left = now >= deadline ? 0 : static_cast<int>((deadline - now + 999'999) / 1'000'000);
    // Returns early, with nothing, when the fd of WakeOnReadable fires.
    TS_ASSIGN_OR_RETURN(bool any, Pump(left));
    if (!any) break;
  }
  const size_t n = ready_.size();
  for (Completion& c : ready_) out->push_back(std::move(c));
  ready_.clear();
  outstanding_ -= n;
  return n;
}

}  // namespace tessera::client
