// SpanQueue: page I/O on a span region's logical pages (doc/design.md,
// "Revisited for faults: spans"), over a queue of the erasure-coded region
// that holds its rows (row = one ec:k+m page of k logical pages).
//
//   - A read of a page asks the one share that holds it, at the version its
//     row was written at (a share read, page_op.h); a page never written or
//     zeroed reads as zeros without I/O.
//   - Writes gather until Flush or Reap, then are packed k to a row into free
//     rows and written whole with their parity, no read before; a write
//     completes when its row has landed, and from then reads go to it.
//   - kZero forgets the page (it reads as zeros); its column dies.
//   - When too few rows are free, rows with few live pages are compacted:
//     their live pages are read and written anew, which frees them. That
//     waits for the queue's writes in flight: it is the slow path of a
//     region whose slack (rows beyond its pages) is used up.
//
// Reads and writes of one page in flight together are not ordered: a read
// submitted while a write of its page has not completed may return either
// content, as on any IoQueue.
//
// Ownership: shares the SpanState (below) with its region; owns the
// row queue. Thread-safety: one thread drives it, as any IoQueue. One queue
// of a region writes at a time (the span layout's single writer); another
// may read meanwhile (a forked child reading its parent's pages): it only
// looks pages up, and every change to the map is made under SpanState::mu.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/io_queue.h"
#include "client/span_map.h"
#include "tessera/client.h"

namespace tessera::client {

// A span region's map and the lock around its changes.
struct SpanState {
  SpanState(uint64_t pages, uint64_t rows, int k) : map(pages, rows, k) {}
  explicit SpanState(SpanMap m) : map(std::move(m)) {}
  std::mutex mu;
  SpanMap map;
};

class SpanQueue final : public IoQueue {
 public:
  // `rows` is a queue of the row region: its page size is k * page_size,
  // its pages are map->rows(), more than pages/k + max(2, k-1): the queue
  // keeps max(2, k-1) rows free, which a compaction needs in the worst case
  // (every row one page short of full); rows beyond are slack, and the more
  // slack the fewer compactions.
  SpanQueue(std::shared_ptr<SpanState> state, std::unique_ptr<IoQueueImpl> rows, uint32_t page_size,
            int timeout_ms);
  ~SpanQueue() override;

  Status Submit(std::span<const PageIo> ios) override;
  Status Flush() override;
  Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) override;
  size_t outstanding() const override { return outstanding_; }
  Status WakeOnReadable(int fd) override { return rows_->WakeOnReadable(fd); }
  // Rows emptied by compaction so far.
  uint64_t rows_compacted() const { return rows_compacted_; }

 private:
  // A caller's PageIo: completes when its last page does.
  struct Op {
    uint64_t user_data = 0;
    uint32_t pages_left = 0;
    Status status;
    uint64_t version = 0;
  };
  struct Write {
    uint64_t page;
    const uint8_t* data;
    Op* op;  // null: a compaction move (data in moves_)
  };
  // What a request on the row queue was for, by its user_data.
  struct Inner {
    enum class Kind : uint8_t { kRead, kRow, kMove } kind;
    Op* op = nullptr;                 // kRead
    SpanMap::RowWrite row;            // kRow
    std::vector<Op*> column_ops;      // kRow: each column's caller (null: padding, a move)
    std::vector<uint8_t> data;        // kRow: the row; kMove: the page read
    uint64_t page = 0;                // kMove
  };

  Status SubmitRead(const PageIo& io, Op* op);
  void SubmitZero(const PageIo& io, Op* op);
  // Packs the gathered writes into rows and sends them, as many rows at a
  // time as are free beyond the reserve.
  Status PackPending();
  Status SendRows(const std::vector<Write>& writes, std::vector<SpanMap::RowWrite> rows);
  // Until `need` rows are free: waits for rows in flight, then compacts.
  Status MakeRoom(uint64_t need);
  Status Compact(uint64_t need);
  // Reaps one batch of the row queue's completions and acts on them; false
  // when none came (woken, or timed out).
  Result<bool> Pump(int timeout_ms);
  void Dispatch(const Completion& c);
  void PageDone(Op* op, const Status& s, uint64_t version = 0);
  uint64_t Tag(Inner inner);

  // The map's lookups and changes, under the lock.
  std::optional<SpanMap::Location> Find(uint64_t page) const;
  Result<std::vector<SpanMap::RowWrite>> Pack(const std::vector<uint64_t>& pages);

  std::shared_ptr<SpanState> state_;
  SpanMap* const map_;  // state_->map: its reads on this thread need no lock
  std::unique_ptr<IoQueueImpl> rows_;
  const uint32_t page_size_;
  const int timeout_ms_;
  size_t outstanding_ = 0;
  std::vector<Write> pending_;
  std::unordered_set<uint64_t> pending_pages_;
  std::unordered_map<uint64_t, Inner> inner_;
  uint64_t rows_in_flight_ = 0;
  uint64_t next_tag_ = 1;
  std::deque<Completion> ready_;
  // Compaction: pages read and about to be written anew.
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> moves_;
  size_t moves_done_ = 0;  // reads of moves answered, read or not
  Status move_error_;      // the first move that could not be read
  uint64_t rows_compacted_ = 0;
};

}  // namespace tessera::client
