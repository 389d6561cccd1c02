// SpanRegion: tessera::Region with the span layout (RegionOptions::layout =
// "span"; doc/design.md, "Revisited for faults: spans"): logical pages of
// page_size bytes kept whole on one memory node each, in rows of an
// erasure-coded region of k * page_size pages that the controller places as
// any other (the row region, same name). A healthy read is one node's round
// trip; writes fill fresh rows whole (span_queue.h).
//
// The map from logical page to row lives here, with the region's one writer:
// the client that created it (and the clones it makes of it, which get a copy
// of the map). Another client opening the name sees only rows.
//
// Ownership: owns the row region; shares the SpanState with its queues (a
// queue must not outlive its region, as for any Region). Thread-safety:
// thread-safe as Region; one of its queues writes at a time (span_queue.h).
#pragma once

#include <memory>

#include "client/region_impl.h"
#include "client/span_queue.h"
#include "tessera/client.h"

namespace tessera::client {

class SpanRegion final : public Region {
 public:
  // Rows for `pages` logical pages in rows of k: the pages, the queue's
  // compaction reserve, and an eighth more as slack.
  static uint64_t RowsFor(uint64_t pages, int k);

  SpanRegion(std::unique_ptr<RegionImpl> rows, std::shared_ptr<SpanState> state, uint32_t page_size,
             int timeout_ms);

  uint64_t id() const override { return rows_->id(); }
  const std::string& name() const override { return rows_->name(); }
  uint32_t page_size() const override { return page_size_; }
  uint64_t num_pages() const override { return state_->map.pages(); }
  std::string redundancy() const override { return rows_->redundancy(); }
  // The row region's: fragment s*width+j holds column j of rows
  // [s, s+1) * pages_per_stripe().
  std::vector<std::string> NodeOfEachFragment() const override { return rows_->NodeOfEachFragment(); }
  uint32_t pages_per_stripe() const override { return rows_->pages_per_stripe(); }

  Status Read(uint64_t first_page, uint64_t count, void* buf) override;
  Status Write(uint64_t first_page, uint64_t count, const void* buf) override;
  std::unique_ptr<IoQueue> NewQueue(const QueueOptions& options) override;

  const std::shared_ptr<SpanState>& state() const { return state_; }

 private:
  Status Sync(PageIo::Kind kind, uint64_t first_page, uint64_t count, void* buf);

  std::unique_ptr<RegionImpl> rows_;
  std::shared_ptr<SpanState> state_;
  const uint32_t page_size_;
  const int timeout_ms_;
};

}  // namespace tessera::client
