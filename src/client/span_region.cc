#include "client/span_region.h"

#include <algorithm>

namespace tessera::client {

uint64_t SpanRegion::RowsFor(uint64_t pages, int k) {
  const uint64_t kk = static_cast<uint64_t>(k);
  const uint64_t full = (pages + kk - 1) / kk;
  return full + std::max<uint64_t>(2, kk - 1) + (full + 7) / 8;
}

SpanRegion::SpanRegion(std::unique_ptr<RegionImpl> rows, std::shared_ptr<SpanState> state, uint32_t page_size,
                       int timeout_ms)
    : rows_(std::move(rows)), state_(std::move(state)), page_size_(page_size), timeout_ms_(timeout_ms) {}

std::unique_ptr<IoQueue> SpanRegion::NewQueue(const QueueOptions& options) {
  return std::make_unique<SpanQueue>(state_, rows_->NewQueueImpl(options), page_size_, timeout_ms_);
}

Status SpanRegion::Read(uint64_t first_page, uint64_t count, void* buf) {
  return Sync(PageIo::Kind::kRead, first_page, count, buf);
}

Status SpanRegion::Write(uint64_t first_page, uint64_t count, const void* buf) {
  return Sync(PageIo::Kind::kWrite, first_page, count, const_cast<void*>(buf));
}

Status SpanRegion::Sync(PageIo::Kind kind, uint64_t first_page, uint64_t count, void* buf) {
  if (count == 0) return Status::Ok();
  if (count > UINT32_MAX) return InvalidArgument("too many pages in one call");
  SpanQueue queue(state_, rows_->NewQueueImpl({.depth = 256, .max_batch_pages = 64}), page_size_, timeout_ms_);
  PageIo io{.kind = kind, .first_page = first_page, .page_count = static_cast<uint32_t>(count), .buffer = buf};
  TS_RETURN_IF_ERROR(queue.Submit({&io, 1}));
  std::vector<Completion> done;
  while (done.empty()) TS_RETURN_IF_ERROR(queue.Reap(&done, 1, timeout_ms_).status());
  return done[0].status;
}

}  // namespace tessera::client
