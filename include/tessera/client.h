// libtessera: the compute side of Tessera. A Client talks to the controller
// (regions: create, open, list, delete; cluster status) and to memory nodes
// (page reads and writes). A Region is a named array of pages living in the
// pool; its pages are spread over memory nodes by the controller, and every
// page travels with a CRC32C that is checked on both ends. A region created
// with redundancy ("replicas:3", "ec:4+2") keeps working — reads decode from
// the surviving fragments — while up to that many memory nodes are lost.
//
//   auto client = tessera::Client::Connect({.controller = "127.0.0.1:7070"});
//   auto region = (*client)->CreateRegion("scratch", 1 << 30, {.redundancy = "ec:4+2"});
//   (*region)->Write(0, 16, buf);        // pages 0..15
//   (*region)->Read(0, 16, buf);
//
// For throughput, an IoQueue submits many page I/Os and reaps completions,
// keeping many requests in flight across all memory nodes (Region::NewQueue).
//
// Ownership: a Client owns its connections; Regions and IoQueues it hands out
// must be destroyed before it. Buffers passed to an IoQueue must stay valid
// until their completion is reaped.
// Thread-safety: Client and Region are thread-safe. An IoQueue belongs to one
// thread at a time; make one per thread.
// Errors: every call returns Status/Result; nothing throws.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace tessera {

struct ClientOptions {
  // The controllers, "host:port[,host:port...]": requests go to the one that
  // leads, found by trying each in turn (the others are standbys).
  std::string controller = "127.0.0.1:7070";
  // How long a page I/O or control request may take before it fails.
  int timeout_ms = 10000;
  // Busy-poll for replies this long before sleeping (0: never). Spinning is
  // dropped automatically when the machine has more runnable threads than
  // cores.
  uint32_t spin_us = 50;
  // A memory node whose connection failed is skipped (I/O goes degraded) for
  // this long before it is tried again.
  uint32_t retry_down_ms = 1000;
  // A memory node that leaves a page request unanswered and sends nothing at
  // all for this long — stopped, or its link cut — is treated as failed: its
  // connection is dropped and I/O goes on degraded, instead of waiting out
  // timeout_ms. Well above a busy node's slowest reply. 0: never.
  uint32_t node_silence_ms = 2000;
  // Follow the open regions' maps as the controller changes them (a thread
  // long-polls it), rather than only when a memory node refuses a stale one.
  bool watch_maps = true;
};

struct RegionOptions {
  uint32_t page_size = 4096;
  // "none", "replicas:N" or "ec:K+M".
  std::string redundancy = "none";
  // "split" (any redundancy; any number of clients) or "span" (ec:K+M only):
  // each page whole on one memory node, so a healthy read is one node's
  // round trip instead of k, and writes are packed into fresh stripes.
  // A span region's map of where its pages are lives in the client that
  // created it: only that client (and the clones it makes) read and write
  // it. It stores an eighth more than a split region (rows kept free so
  // that rewritten pages find room). doc/design.md, "spans".
  std::string layout = "split";
  // 0: the region lives until deleted. Otherwise the controller deletes it
  // once this long passes without RenewLeases naming it: a program killed
  // before it could delete its region leaves nothing behind for long.
  uint32_t lease_ms = 0;
};

struct PageIo {
  // kZero writes zeros without sending any: the pages read back as zeros,
  // and the memory nodes give back the memory they held (a program's freed
  // memory). It orders with writes like a write.
  enum class Kind : uint8_t { kRead, kWrite, kZero };
  Kind kind = Kind::kRead;
  uint64_t first_page = 0;
  uint32_t page_count = 1;
  // page_count * page_size bytes: filled by reads, sent by writes; kZero
  // takes none.
  void* buffer = nullptr;
  uint64_t user_data = 0;  // returned in the Completion
};

struct Completion {
  uint64_t user_data = 0;
  Status status;
  // Writes that succeeded: the version their (last) page was stored at.
  uint64_t version = 0;
};

class IoQueue {
 public:
  virtual ~IoQueue() = default;
  // Queues I/Os; they are sent when a per-node batch fills or at Flush().
  // Blocks (receiving replies) while the queue already has `depth` pages in
  // flight. Invalid I/Os (past the region's end, null buffer) are rejected
  // whole, before anything is queued.
  virtual Status Submit(std::span<const PageIo> ios) = 0;
  virtual Status Flush() = 0;
  // Flushes, then waits until at least `min` completions are available (or
  // timeout_ms passes: TimedOut), and moves every available one to `out`.
  virtual Result<size_t> Reap(std::vector<Completion>* out, size_t min, int timeout_ms) = 0;
  // I/Os submitted and not yet reaped.
  virtual size_t outstanding() const = 0;
  // Makes a Reap that would wait return early — Ok, possibly with no
  // completions — once new data arrives on `fd` (edge triggered: it is not
  // read, and data left unread does not count). For a thread that serves
  // another event source while it drives the queue (vNode: its
  // userfaultfd), reading it before each Reap. -1 turns it off.
  virtual Status WakeOnReadable(int fd) = 0;
};

struct QueueOptions {
  // Pages in flight at most.
  uint32_t depth = 64;
  // Pages per request to one memory node at most (in bytes: a request carries
  // up to this many pages' worth of fragments).
  uint32_t max_batch_pages = 64;
  // Reads ask this many fragments beyond the k they need and use the first k
  // that agree: more traffic, a shorter tail when a node is slow.
  uint32_t read_extra = 0;
};

class Region {
 public:
  virtual ~Region() = default;
  virtual uint64_t id() const = 0;
  virtual const std::string& name() const = 0;
  virtual uint32_t page_size() const = 0;
  virtual uint64_t num_pages() const = 0;
  // "none", "replicas:N" or "ec:K+M".
  virtual std::string redundancy() const = 0;
  // Where the pages live: stripe s holds pages [s, s+1) * pages_per_stripe()
  // as width = k+m fragments, fragment s*width+j on node NodeOfEachFragment()[s*width+j].
  virtual std::vector<std::string> NodeOfEachFragment() const = 0;
  virtual uint32_t pages_per_stripe() const = 0;

  // Synchronous page I/O: count pages starting at first_page, to or from buf
  // (count * page_size bytes). On error, which pages were written is
  // unspecified, but every page reads back as one whole version: the last
  // acknowledged write, or a write that was in flight — never a mix.
  // A page with too few surviving fragments fails with code kDataLoss.
  virtual Status Read(uint64_t first_page, uint64_t count, void* buf) = 0;
  virtual Status Write(uint64_t first_page, uint64_t count, const void* buf) = 0;

  virtual std::unique_ptr<IoQueue> NewQueue(const QueueOptions& options) = 0;
};

struct RegionSummary {
  uint64_t id = 0;
  std::string name;
  uint32_t page_size = 0;
  uint64_t num_pages = 0;
  uint32_t node_count = 0;
  std::string redundancy;
  // "healthy", "degraded" (fragments missing, every page readable),
  // "rebuilding" (missing fragments being remade) or "lost" (some pages have
  // fewer than k fragments left).
  std::string health;
  uint64_t stripes = 0;
  uint64_t degraded_stripes = 0;
  uint64_t lost_stripes = 0;
  uint64_t rebuild_done_bytes = 0;
  uint64_t rebuild_total_bytes = 0;
  uint64_t rebuild_bytes_per_s = 0;
};

struct NodeStatus {
  uint64_t id = 0;
  std::string address;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;  // placed by the controller
  uint64_t rss_bytes = 0;   // the node's resident memory, as last reported
  bool alive = false;
  uint32_t ms_since_heartbeat = 0;
};

struct ClusterStatus {
  std::vector<NodeStatus> nodes;
  std::vector<RegionSummary> regions;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client() = default;

  virtual Result<std::unique_ptr<Region>> CreateRegion(const std::string& name, uint64_t size_bytes,
                                                       const RegionOptions& options = {}) = 0;
  virtual Result<std::unique_ptr<Region>> OpenRegion(const std::string& name) = 0;
  // A new region `name` with a copy of `source`'s pages, made at the memory
  // nodes (no page crosses the network): a forked process's memory. Writes
  // to `source` racing with the clone land on one side or both; the caller
  // clones a region nobody is writing.
  // `lease_ms` as in RegionOptions.
  virtual Result<std::unique_ptr<Region>> CloneRegion(const std::string& source, const std::string& name,
                                                      uint32_t lease_ms) = 0;
  // Renews the leases of these regions (RegionOptions::lease_ms); NotFound
  // names those that no longer exist.
  virtual Status RenewLeases(const std::vector<std::string>& names) = 0;
  virtual Status DeleteRegion(const std::string& name) = 0;
  virtual Result<std::vector<RegionSummary>> ListRegions() = 0;
  virtual Result<ClusterStatus> GetClusterStatus() = 0;
};

}  // namespace tessera
