// IoQueueImpl: the client's page I/O engine behind tessera::IoQueue, and the
// path the synchronous Region::Read/Write take too.
//
// Submit() cuts each PageIo into pages, routes every page to its memory node
// (RegionMap) and appends it to that node's open batch; a batch is sent as one
// c2m::ReadPages or c2m::WritePages when it reaches max_batch_pages or at
// Flush(). Reply callbacks check each page's CRC32C, copy read data into the
// caller's buffer, and complete a PageIo when its last page is done.
//
// Ownership: borrows the RegionMap and NodePool (which outlive it); owns its
// batches and in-flight bookkeeping. Thread-safety: one thread drives a queue;
// its reply callbacks may run on any thread that is receiving for the shared
// transport, so the bookkeeping they touch is under mu_.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "client/node_pool.h"
#include "client/region_map.h"
#include "tessera/client.h"

namespace tessera::client {

class IoQueueImpl final : public IoQueue {
 public:
  IoQueueImpl(const RegionMap* map, NodePool* pool, const QueueOptions& options, int timeout_ms);
  // Waits for everything in flight; after timeout_ms, aborts it.
  ~IoQueueImpl() override;

  Status Submit(std::span<const PageIo> ios) override;
  Status Flush() override;
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override;
  size_t outstanding() const override { return outstanding_.load(); }

  // Fails every request still in flight (their callbacks run before this
  // returns) so that no late reply can touch a caller's buffer.
  void AbortInFlight(const Status& why);

 private:
  struct Op;
  struct Target {
    uint32_t fragment;
    uint32_t slot;
    uint8_t* buf;
    Op* op;
  };
  struct Batch {
    PageIo::Kind kind;
    uint16_t node;
    std::vector<Target> targets;
    std::shared_ptr<net::Connection> conn;
  };

  Status Validate(const PageIo& io) const;
  Status SendBatch(std::unique_ptr<Batch> batch);
  void OnReply(Batch* batch, const Status& status, const proto::FrameHeader& h, proto::ByteSpan body);
  // Completes every page of `batch`; called with mu_ held.
  void FinishTargets(const Batch& batch, const Status& status);
  // Completes `pages` pages of `op`, and the op with its last; mu_ held.
  void FinishPages(Op* op, uint32_t pages, const Status& status);
  // Fails the pages of `op` that Submit could not queue.
  void AbandonPages(Op* op, uint32_t pages, const Status& why);
  Status WaitForRoom();

  const RegionMap* map_;
  NodePool* pool_;
  QueueOptions options_;
  int timeout_ms_;
  // Open batches by (node, kind); only the driving thread touches them.
  std::map<std::pair<uint16_t, PageIo::Kind>, std::unique_ptr<Batch>> open_;

  std::atomic<size_t> outstanding_{0};     // ops submitted, not reaped
  std::atomic<size_t> pages_in_flight_{0}; // pages sent or queued, not completed
  std::atomic<size_t> ready_{0};           // completions waiting to be reaped
  std::mutex mu_;
  std::deque<Completion> completions_;     // guarded by mu_
  std::map<Batch*, std::unique_ptr<Batch>> in_flight_;  // guarded by mu_
};

}  // namespace tessera::client
