// IoQueueImpl: the client's page I/O engine behind tessera::IoQueue, and the
// path the synchronous Region::Read/Write take too.
//
// Submit() makes a PageOp per page (page_op.h), which picks the shares of
// the page's stripe to send; each share goes into the open batch for its
// memory node, sent as one c2m::ReadPages or c2m::WritePages when it reaches
// max_batch_pages, at Flush(), or once no more shares are in flight than wait
// in open batches (FlushDue): while plenty is in flight, new shares gather
// into bigger requests instead of going out one small request per node per
// reaped page — which, with k+m nodes per page, cost erasure-coded writes
// most of their throughput. At depth 1 every Reap still sends at once. Reply callbacks check every share's CRC32C
// and hand it to its PageOp; a page that settles completes its PageIo's part.
// A page that needs another round (a node failed, versions differ), a newer
// map, or a conflict settled (resolver.h) is handed to the driving thread,
// which issues it again from inside Submit/Flush/Reap — never from a
// callback (io_queue_retries.cc). A write of a page that already has a write
// in flight (in any queue of the region: WriteTracker) waits, deferred, until
// that one is done.
//
// A node that leaves a batch unanswered and sends nothing on its connection
// for NodePool::silence_ms (stopped, or its link cut: no reply, no close) has
// that connection aborted by the driving thread, which checks while it waits:
// its shares fail as Unavailable, the node is marked down, writes settle on
// the shares that answered and reads ask others, instead of every page
// waiting out timeout_ms.
//
// Ownership: borrows the MapSource, NodePool, VersionClock and WriteTracker
// (which outlive it); owns its batches, PageOps and Resolver. Thread-safety: one thread drives a queue;
// its reply callbacks may run on any thread that is receiving for the shared
// transport, so the bookkeeping they touch is under mu_.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "client/node_pool.h"
#include "client/page_op.h"
#include "client/region_map.h"
#include "client/resolver.h"
#include "client/version_clock.h"
#include "client/write_tracker.h"
#include "tessera/client.h"

namespace tessera::client {

class IoQueueImpl final : public IoQueue {
 public:
  IoQueueImpl(MapSource* maps, NodePool* pool, VersionClock* clock, WriteTracker* writes,
              const QueueOptions& options, int timeout_ms);
  // Waits for everything in flight; after timeout_ms, aborts it.
  ~IoQueueImpl() override;

  Status Submit(std::span<const PageIo> ios) override;
  Status Flush() override;
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override;
  size_t outstanding() const override { return outstanding_.load(); }
  Status WakeOnReadable(int fd) override;
  // Reads share `share` (< k) of `page` into `buffer` (slot_size bytes),
  // accepting only version `expect`: from its one node when it has it,
  // else decoded from the page (page_op.h, share reads). Completes like a
  // one-page read, with `user_data`. For span regions.
  Status SubmitShareRead(uint64_t page, int share, uint64_t expect, void* buffer, uint64_t user_data);

  // Fails every request still in flight (their callbacks run before this
  // returns) and every page still to be retried, so that nothing can touch a
  // caller's buffer afterwards.
  void AbortInFlight(const Status& why);

 private:
  struct Target {
    PageOp* page;
    int share;
    uint32_t fragment;
    uint32_t slot;
  };
  struct Batch {
    PageIo::Kind kind;
    std::string address;
    uint64_t region;
    uint64_t epoch;
    uint32_t slot_size;
    bool with_previous;
    std::vector<Target> targets;
    std::shared_ptr<net::Connection> conn;
    uint64_t sent_ns = 0;
  };
  using BatchKey = std::tuple<std::string, PageIo::Kind, uint64_t, bool>;

  Status Validate(const PageIo& io, const RegionMap& map) const;
  // Plans `page`'s next shares and queues them (driving thread).
  Status Issue(PageOp* page);
  Status SendBatch(std::unique_ptr<Batch> batch);
  // Sends the open batches if FlushDue(): no more shares in flight than open
  // (driving thread; a wait predicate may call FlushDue: no locks).
  Status FlushIfDue();
  bool FlushDue() const { return open_shares_ > 0 && sent_shares_.load() <= open_shares_; }
  void OnReply(Batch* batch, const Status& status, const proto::FrameHeader& h, proto::ByteSpan body);
  // Acts on a page's state after it changed: reports, retires or hands it to
  // the driving thread. mu_ held.
  void Advance(PageOp* page);
  // Fails `page` (which no callback holds) and advances it. Takes mu_.
  void FailPage(PageOp* page, const Status& why);
  // Drives the transport until done() holds, re-issuing pages that need it.
  Status Drive(const std::function<bool()>& done, uint64_t deadline_ns);
  Status ServiceRetries();
  // When Drive should next look for silent nodes (UINT64_MAX: nothing in
  // flight, or the check is off); then AbortSilent does (driving thread).
  uint64_t NextSilenceCheck() const;
  void AbortSilent();
  // Starts deferred writes whose page has come free (driving thread).
  Status StartDeferred();
  // Gives a write that found newer versions a version above them.
  void Rebase(PageOp* page);
  // Settles the conflicts of `pages` and issues their writes again.
  Status ResolveAndRetry(std::vector<PageOp*> pages);
  // Whether a deferred write may have come free (the driving thread's wait
  // predicate: no locks).
  bool DeferredMayStart() const { return !deferred_.empty() && writes_->generation() != deferred_seen_; }
  Status WaitForRoom();
  uint64_t Deadline(int timeout_ms) const;

  MapSource* maps_;
  NodePool* pool_;
  VersionClock* clock_;
  WriteTracker* writes_;
  Resolver resolver_;
  QueueOptions options_;
  int timeout_ms_;
  // Open batches; only the driving thread touches them.
  std::map<BatchKey, std::unique_ptr<Batch>> open_;
  size_t open_shares_ = 0;  // targets in open_; driving thread only
  // Writes waiting for their page; only the driving thread touches them.
  std::deque<PageOp*> deferred_;
  uint64_t deferred_seen_ = 0;  // WriteTracker generation when last tried

  std::atomic<size_t> outstanding_{0};     // ops submitted, not reaped
  std::atomic<size_t> pages_in_flight_{0}; // pages submitted, not reported
  std::atomic<size_t> ready_{0};           // completions waiting to be reaped
  std::atomic<size_t> retries_waiting_{0};    // retries_.size()
  std::atomic<size_t> batches_in_flight_{0};  // in_flight_.size()
  std::atomic<size_t> sent_shares_{0};        // targets of in_flight_
  std::atomic<bool> aborting_{false};
  uint64_t silence_checked_ns_ = 0;  // driving thread only
  int wake_fd_ = -1;               // WakeOnReadable; driving thread only
  std::atomic<bool> woken_{false};  // set by the transport when wake_fd_ fires
  std::mutex mu_;
  std::deque<Completion> completions_;                  // guarded by mu_
  std::map<Batch*, std::unique_ptr<Batch>> in_flight_;  // guarded by mu_
  std::vector<PageOp*> retries_;                        // guarded by mu_
};

}  // namespace tessera::client
