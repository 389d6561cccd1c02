// SpanMap: where each logical page of a span region lives — the bookkeeping
// of the span layout (doc/design.md, "Revisited for faults: spans"). A span
// region stores whole 4 KiB pages in *rows*: a row is one erasure-coded unit
// of k data columns (one logical page each, on k different memory nodes) and
// m parity columns, written whole and once, with one version. A write never
// updates a row in place: Pack puts the pages of a batch into free rows, and
// when a row's write has landed its pages live there and their old columns
// are dead. A row with no live column is free again; rows with few live
// columns are compaction candidates (their live pages are read and packed
// anew) when free rows run short.
//
// Writes in flight are ordered by when they were packed: if a page is packed
// twice before either lands, the later pack wins whichever lands last, and a
// page zeroed after a pack stays zero when that pack lands.
//
// Its tables are sized by the region (a program's whole --heap) but cost
// memory only for the pages and rows used (LazyArray): ~20 bytes per page
// written, nothing for the rest.
//
// Ownership: owned by the region's single writer (the map is what makes the
// span layout single-writer); copied only by Snapshot. Thread-safety: none;
// the owner serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/lazy_array.h"
#include "common/result.h"

namespace tessera::client {

class SpanMap {
 public:
  // A column of a row that carries no page (the last row of a batch).
  static constexpr uint64_t kNoPage = ~0ull;

  struct Location {
    uint64_t row = 0;
    int column = 0;
    uint64_t version = 0;  // of the row's write: a read accepts only this one
  };

  // One row to write: `pages[c]` goes to column c (kNoPage: padding).
  struct RowWrite {
    uint64_t row = 0;
    std::vector<uint64_t> pages;
    uint64_t seq = 0;  // pack order
  };

  // `pages` logical pages over `rows` rows of `k` columns (rows * k must
  // leave room to compact: more than `pages`).
  SpanMap(uint64_t pages, uint64_t rows, int k);

  uint64_t pages() const { return pages_.size(); }
  uint64_t rows() const { return rows_.size(); }
  int k() const { return k_; }
  uint64_t free_rows() const { return free_.size() + (rows_.size() - next_unused_); }

  // Where `page` lives; nullopt when it was never written or was zeroed
  // (it reads as zeros).
  std::optional<Location> Find(uint64_t page) const;

  // Packs `pages` (each < pages(), in order; a page twice in one batch is an
  // error) into free rows, k to a row, the last padded with kNoPage.
  // OutOfCapacity when too few rows are free: compact first.
  Result<std::vector<RowWrite>> Pack(std::span<const uint64_t> pages);
  // `w` landed at `version`: each of its pages lives there now unless
  // written (packed) or zeroed since; its columns that carry nothing current
  // are dead at once.
  void Landed(const RowWrite& w, uint64_t version);
  // `w` did not land: its row is free again and its pages stay where they were.
  void Failed(const RowWrite& w);
  // `page` reads as zeros from now on; its column dies.
  void Zero(uint64_t page);

  // A copy for a clone of the region's rows, made while nobody writes: rows
  // being written are free in it (no page lives there yet) and no page has a
  // write in flight.
  SpanMap Snapshot() const;

  // Up to `limit` written rows with at most `max_live` live pages, fewest
  // first: packing their live pages anew frees them. (A scan of the rows:
  // compaction is for when free rows run short, not for every write.)
  std::vector<uint64_t> CompactionCandidates(int max_live, size_t limit) const;
  // The pages that live in `row` and have no write in flight (a page being
  // written moves anyway; packing its older content again would race it).
  std::vector<uint64_t> LivePages(uint64_t row) const;
  int live(uint64_t row) const { return rows_[row].live; }

 private:
  // All-zero entries are the empty ones (LazyArray).
  enum class RowState : uint8_t { kFree = 0, kWriting, kWritten };
  struct Row {
    RowState state;
    uint16_t live;
    uint64_t version;
  };
  struct Page {
    uint32_t row_plus_1;  // 0: nowhere (never written, or zeroed)
    uint16_t column;
    uint16_t in_flight;  // packs not yet landed or failed
    uint64_t seq;        // of the pack (or zeroing) that decides its content
  };

  SpanMap(int k, LazyArray<Page> pages, LazyArray<Row> rows, LazyArray<uint64_t> row_pages)
      : k_(k), pages_(std::move(pages)), rows_(std::move(rows)), row_pages_(std::move(row_pages)) {}
  uint64_t TakeRow();
  void FreeRow(uint64_t row);
  // `page` no longer lives where it did: that column dies.
  void Leave(Page& p);

  const int k_;
  LazyArray<Page> pages_;
  LazyArray<Row> rows_;
  LazyArray<uint64_t> row_pages_;  // rows * k: page + 1 each column was written with (0: none)
  std::vector<uint64_t> free_;     // rows freed, taken from the back
  uint64_t next_unused_ = 0;       // rows from here on were never used (free too)
  uint64_t next_seq_ = 1;
};

}  // namespace tessera::client
