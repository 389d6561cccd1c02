#include "client/span_map.h"

#include <algorithm>
#include <string>

#include "common/check.h"

namespace tessera::client {

SpanMap::SpanMap(uint64_t pages, uint64_t rows, int k)
    : k_(k), pages_(pages), rows_(rows), row_pages_(rows * static_cast<uint64_t>(k), kNoPage) {
  CHECK(k > 0 && k <= 64);
  CHECK(rows < Page::kNowhere);
  free_.reserve(rows);
  // Lowest rows first: a region that is never full keeps to its start.
  for (uint64_t r = rows; r > 0; --r) free_.push_back(r - 1);
}

std::optional<SpanMap::Location> SpanMap::Find(uint64_t page) const {
  const Page& p = pages_[page];
  if (p.row == Page::kNowhere) return std::nullopt;
  return Location{p.row, p.column, rows_[p.row].version};
}

Result<std::vector<SpanMap::RowWrite>> SpanMap::Pack(std::span<const uint64_t> pages) {
  const uint64_t need = (pages.size() + static_cast<uint64_t>(k_) - 1) / static_cast<uint64_t>(k_);
  if (need > free_.size()) {
    return OutOfCapacity("a span region needs " + std::to_string(need) + " free rows for " +
                             std::to_string(pages.size()) + " pages and has " + std::to_string(free_.size()));
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
    RowWrite w{.row = free_.back(), .pages = std::vector<uint64_t>(static_cast<size_t>(k_), kNoPage), .seq = seq};
    free_.pop_back();
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
    row_pages_[w.row * static_cast<uint64_t>(k_) + c] = w.pages[c];
    if (w.pages[c] == kNoPage) continue;
    Page& p = pages_[w.pages[c]];
    --p.in_flight;
    if (p.seq > w.seq) continue;  // written again or zeroed since this pack
    Leave(p);
    p.row = static_cast<uint32_t>(w.row);
    p.column = static_cast<uint16_t>(c);
    p.seq = w.seq;
    ++row.live;
  }
  if (row.live == 0) {
    row.state = RowState::kFree;
    free_.push_back(w.row);
  }
}

void SpanMap::Failed(const RowWrite& w) {
  Row& row = rows_[w.row];
  CHECK(row.state == RowState::kWriting);
  row.state = RowState::kFree;
  free_.push_back(w.row);
  for (uint64_t page : w.pages) {
    if (page != kNoPage) --pages_[page].in_flight;
  }
}

SpanMap SpanMap::Snapshot() const {
  SpanMap copy(*this);
  for (uint64_t r = 0; r < copy.rows_.size(); ++r) {
    if (copy.rows_[r].state != RowState::kWriting) continue;
    copy.rows_[r].state = RowState::kFree;
    copy.free_.push_back(r);
  }
  for (Page& p : copy.pages_) p.in_flight = 0;
  return copy;
}

void SpanMap::Zero(uint64_t page) {
  Page& p = pages_[page];
  Leave(p);
  p.seq = next_seq_++;
}

void SpanMap::Leave(Page& p) {
  if (p.row == Page::kNowhere) return;
  Row& old = rows_[p.row];
  CHECK(old.state == RowState::kWritten && old.live > 0);
  if (--old.live == 0) {
    old.state = RowState::kFree;
    free_.push_back(p.row);
  }
  p.row = Page::kNowhere;
}

std::vector<uint64_t> SpanMap::CompactionCandidates(int max_live, size_t limit) const {
  std::vector<uint64_t> out;
  for (uint64_t r = 0; r < rows_.size(); ++r) {
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
    const uint64_t page = row_pages_[row * static_cast<uint64_t>(k_) + static_cast<uint64_t>(c)];
    if (page == kNoPage) continue;
    const Page& p = pages_[page];
    if (p.row == row && p.column == c && p.in_flight == 0) out.push_back(page);
  }
  return out;
}

}  // namespace tessera::client
