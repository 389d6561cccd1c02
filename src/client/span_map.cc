#include "client/span_map.h"

#include <algorithm>
#include <string>

#include "common/check.h"

namespace tessera::client {

SpanMap::SpanMap(uint64_t pages, uint64_t rows, int k)
    : k_(k), pages_(pages), rows_(rows), row_pages_(rows * static_cast<uint64_t>(k)) {
  CHECK(k > 0 && k <= 64);
  CHECK(rows < UINT32_MAX);
}

std::optional<SpanMap::Location> SpanMap::Find(uint64_t page) const {
  const Page& p = pages_[page];
  if (p.row_plus_1 == 0) return std::nullopt;
  return Location{p.row_plus_1 - 1u, p.column, rows_[p.row_plus_1 - 1].version};
}

uint64_t SpanMap::TakeRow() {
  // Rows freed first, then never-used ones in order: a region that is never
  // full keeps to its start.
  if (free_.empty()) return next_unused_++;
  const uint64_t row = free_.back();
  free_.pop_back();
  return row;
}

void SpanMap::FreeRow(uint64_t row) {
  rows_[row].state = RowState::kFree;
  free_.push_back(row);
}

Result<std::vector<SpanMap::RowWrite>> SpanMap::Pack(std::span<const uint64_t> pages) {
  const uint64_t need = (pages.size() + static_cast<uint64_t>(k_) - 1) / static_cast<uint64_t>(k_);
  if (need > free_rows()) {
    return OutOfCapacity("a span region needs " + std::to_string(need) + " free rows for " +
                             std::to_string(pages.size()) + " pages and has " + std::to_string(free_rows()));
  }
  std::vector<uint64_t> sorted(pages.begin(), pages.end());
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] >= pages_.size()) return InvalidArgument("page " + std::to_string(sorted[i]) + " is past the end");
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      return InvalidArgument("page " + std::to_string(sorted[i]) + " twice in one batch");
    }
  }
  std::vector<RowWrite> out;
  out.reserve(need);
  const uint64_t seq = next_seq_++;
  for (size_t i = 0; i < pages.size(); i += static_cast<size_t>(k_)) {
    RowWrite w{.row = TakeRow(), .pages = std::vector<uint64_t>(static_cast<size_t>(k_), kNoPage), .seq = seq};
    rows_[w.row].state = RowState::kWriting;
    for (size_t c = 0; c < static_cast<size_t>(k_) && i + c < pages.size(); ++c) {
      w.pages[c] = pages[i + c];
      ++pages_[pages[i + c]].in_flight;
    }
    out.push_back(std::move(w));
  }
  return out;
}

void SpanMap::Landed(const RowWrite& w, uint64_t version) {
  Row& row = rows_[w.row];
  CHECK(row.state == RowState::kWriting);
  row.state = RowState::kWritten;
  row.version = version;
  row.live = 0;
  for (size_t c = 0; c < w.pages.size(); ++c) {
    row_pages_[w.row * static_cast<uint64_t>(k_) + c] = w.pages[c] == kNoPage ? 0 : w.pages[c] + 1;
    if (w.pages[c] == kNoPage) continue;
    Page& p = pages_[w.pages[c]];
    --p.in_flight;
    if (p.seq > w.seq) continue;  // written again or zeroed since this pack
    Leave(p);
    p.row_plus_1 = static_cast<uint32_t>(w.row + 1);
    p.column = static_cast<uint16_t>(c);
    p.seq = w.seq;
    ++row.live;
  }
  if (row.live == 0) FreeRow(w.row);
}

void SpanMap::Failed(const RowWrite& w) {
  Row& row = rows_[w.row];
  CHECK(row.state == RowState::kWriting);
  FreeRow(w.row);
  for (uint64_t page : w.pages) {
    if (page != kNoPage) --pages_[page].in_flight;
  }
}

SpanMap SpanMap::Snapshot() const {
  SpanMap copy(k_, pages_.Copy(), rows_.Copy(), row_pages_.Copy());
  copy.free_ = free_;
  copy.next_unused_ = next_unused_;
  copy.next_seq_ = next_seq_;
  for (uint64_t r = 0; r < next_unused_; ++r) {
    if (copy.rows_[r].state == RowState::kWriting) copy.FreeRow(r);
  }
  for (uint64_t p = 0; p < copy.pages_.size(); ++p) {
    if (copy.pages_[p].in_flight != 0) copy.pages_[p].in_flight = 0;  // no write to a page never written
  }
  return copy;
}

void SpanMap::Zero(uint64_t page) {
  Page& p = pages_[page];
  Leave(p);
  p.seq = next_seq_++;
}

void SpanMap::Leave(Page& p) {
  if (p.row_plus_1 == 0) return;
  const uint64_t row = p.row_plus_1 - 1;
  Row& old = rows_[row];
  CHECK(old.state == RowState::kWritten && old.live > 0);
  if (--old.live == 0) FreeRow(row);
  p.row_plus_1 = 0;
}

std::vector<uint64_t> SpanMap::CompactionCandidates(int max_live, size_t limit) const {
  std::vector<uint64_t> out;
  for (uint64_t r = 0; r < next_unused_; ++r) {
    if (rows_[r].state == RowState::kWritten && rows_[r].live <= max_live) out.push_back(r);
  }
  std::stable_sort(out.begin(), out.end(), [&](uint64_t a, uint64_t b) { return rows_[a].live < rows_[b].live; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::vector<uint64_t> SpanMap::LivePages(uint64_t row) const {
  std::vector<uint64_t> out;
  if (rows_[row].state != RowState::kWritten) return out;
  for (int c = 0; c < k_; ++c) {
    const uint64_t plus_1 = row_pages_[row * static_cast<uint64_t>(k_) + static_cast<uint64_t>(c)];
    if (plus_1 == 0) continue;
    const Page& p = pages_[plus_1 - 1];
    if (p.row_plus_1 == row + 1 && p.column == c && p.in_flight == 0) out.push_back(plus_1 - 1);
  }
  return out;
}

}  // namespace tessera::client
