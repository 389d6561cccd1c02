// RegionImpl: tessera::Region over a RegionMap. Synchronous Read/Write run
// through a private IoQueueImpl so there is one page I/O path.
//
// Ownership: shares the Client's NodePool (which must outlive it).
// Thread-safety: thread-safe; each synchronous call uses its own queue.
#pragma once

#include "client/io_queue.h"
#include "client/node_pool.h"
#include "client/region_map.h"
#include "tessera/client.h"

namespace tessera::client {

class RegionImpl final : public Region {
 public:
  RegionImpl(proto::c2ctl::RegionInfo info, NodePool* pool, int timeout_ms)
      : map_(std::move(info)), pool_(pool), timeout_ms_(timeout_ms) {}

  uint64_t id() const override { return map_.info().id; }
  const std::string& name() const override { return map_.info().name; }
  uint32_t page_size() const override { return map_.info().page_size; }
  uint64_t num_pages() const override { return map_.info().num_pages; }
  uint32_t pages_per_fragment() const override { return map_.info().pages_per_fragment; }
  std::vector<std::string> NodeOfEachFragment() const override;

  Status Read(uint64_t first_page, uint64_t count, void* buf) override;
  Status Write(uint64_t first_page, uint64_t count, const void* buf) override;
  std::unique_ptr<IoQueue> NewQueue(const QueueOptions& options) override;

 private:
  Status Sync(PageIo::Kind kind, uint64_t first_page, uint64_t count, void* buf);

  RegionMap map_;
  NodePool* pool_;
  int timeout_ms_;
};

}  // namespace tessera::client
