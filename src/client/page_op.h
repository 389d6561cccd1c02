// PageOp: one page's read or write across the shares of its stripe — the
// unit the IoQueue schedules. It decides which shares to ask for, collects
// what comes back, and settles: a read on the newest version that at least k
// shares agree on (decoding if a data share is missing), a write once at least
// k readable shares hold it.
//
// Reads ask k shares (data shares first, so a healthy read needs no decode),
// or k + read_extra to cut the tail with the first k that agree; if those do
// not settle it — a node failed, versions differ because a write was in
// flight or its writer died — the next round asks every live share for its
// current and previous version (proto/c2m.h, the write hole) and takes the
// newest version k of them hold. A stale-map reply makes the page start over
// on a newer map.
//
// A share read (span regions, span_map.h) wants one share of the page, a
// whole 4 KiB logical page, at a version it knows: it asks that share's node
// alone and takes it if it holds that version; otherwise (its node down, or
// another version there) it reads the page as above, decodes, and takes the
// share from it — DataLoss if the page no longer holds that version.
//
// Page states: kIssued (shares in flight) -> kSettled (outcome known, late
// replies may still arrive) -> kRetired (last reply in; the queue deletes it).
// kIssued -> kNeedsRound / kNeedsMap / kNeedsResolve (a write met another
// writer's unfinished write) / kNeedsVersion (a write found a newer version
// in place on some share: it did not land there, and is written again above
// that version) hand the page to the queue's driving thread, which issues it
// again. A write settles only on shares that applied it: a share that holds
// a newer version is never counted.
//
// Thread-safety: none; the IoQueue calls it under its lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/node_pool.h"
#include "client/region_map.h"
#include "proto/wire.h"
#include "tessera/client.h"

namespace tessera::client {

// A caller's PageIo: completes when its last page does.
struct UserOp {
  uint64_t user_data = 0;
  uint32_t pages_left = 0;
  Status status;  // first error
  uint64_t version = 0;  // writes: the version the last page to land holds
};

// What one share's reply carried.
struct ShareReply {
  uint64_t version = 0;
  proto::ByteSpan data;  // reads
  bool has_previous = false;
  uint64_t previous_version = 0;
  proto::ByteSpan previous;
  bool conflict = false;  // writes: another writer's unfinished write is there
  bool superseded = false;  // writes: not applied, the share holds version `held`
  uint64_t held = 0;
};

class PageOp {
 public:
  enum class State : uint8_t { kIssued, kNeedsRound, kNeedsMap, kNeedsResolve, kNeedsVersion, kSettled, kRetired };

  PageOp(UserOp* op, PageIo::Kind kind, uint64_t page, uint8_t* buf, uint64_t version);
  // A share read: share `share` (< k) of `page` at version `expect`, into
  // `buf` (slot_size bytes).
  static PageOp* ShareRead(UserOp* op, uint64_t page, int share, uint64_t expect, uint8_t* buf);

  // Starts an attempt on `map` (the first, or again after a stale map).
  void Begin(std::shared_ptr<const RegionMap> map);
  // The shares to send now: a first round, or the next one after
  // kNeedsRound. Empty means nothing could be sent: the page has settled
  // (DataLoss or Unavailable) and Settled() says so.
  std::vector<int> PlanRound(NodePool& pool, int read_extra);
  // Where a write's share j comes from; null: zeros (a write without a buffer).
  const uint8_t* ShareData(int j) const { return share_[j]; }

  // One share's reply (or failure). Returns the state after it.
  State Record(int j, const Status& status, const ShareReply& reply = {});
  // Reads: whether this round asks for previous versions too.
  bool with_previous() const { return with_previous_; }
  // Writes: how many times the page was settled for a conflict; the page
  // holds (`taken`) its slot in the WriteTracker.
  int resolves() const { return resolves_; }
  void count_resolve() { ++resolves_; }
  bool taken() const { return taken_; }
  void set_taken() { taken_ = true; }
  // Writes after kNeedsVersion: the newest version a share holds instead of
  // this write's; the write then carries `version`, above it, from its next
  // Begin. rebases() counts how often.
  uint64_t newest_held() const { return newest_held_; }
  void Rebase(uint64_t version) {
    version_ = version;
    ++rebases_;
  }
  int rebases() const { return rebases_; }

  State state() const { return state_; }
  const Status& outcome() const { return outcome_; }
  UserOp* user() const { return op_; }
  PageIo::Kind kind() const { return kind_; }
  uint64_t page() const { return page_; }
  uint64_t version() const { return version_; }
  const RegionMap& map() const { return *map_; }
  uint64_t stale_epoch() const { return map_->epoch(); }
  int attempts() const { return attempts_; }
  // Fails a page the queue gives up on (abort, map refresh failed).
  void Fail(const Status& why);
  // Whether the queue has told the caller about this page's outcome.
  bool reported() const { return reported_; }
  void set_reported() { reported_ = true; }

 private:
  bool Usable(NodePool& pool, int j) const;
  // The unasked usable shares to send (k + read_extra of them first).
  std::vector<int> Choose(NodePool& pool, int read_extra);
  // Why the page cannot be had: Unavailable when nodes holding it could not be
  // reached, DataLoss when its fragments are gone.
  Status Shortfall() const;
  void TrySettleRead();
  // A share read's settle: Ok once its share holds the expected version.
  bool TrySettleShare();
  // Decodes the page from `shares` (which agree on the expected version)
  // and copies the wanted share out of it.
  void SettleShareFromPage(uint32_t shares);
  void SettleWrite();
  void AfterLastReply();
  uint8_t* ShareBuf(int j) { return scratch_.data() + static_cast<size_t>(j) * map_->codec().slot_size(); }
  uint8_t* PreviousBuf(int j) { return ShareBuf(map_->width() + j); }

  UserOp* op_;
  const PageIo::Kind kind_;
  const uint64_t page_;
  uint8_t* const buf_;
  uint64_t version_;  // writes: the version this write stores; share reads: the one expected
  int wanted_ = -1;   // share reads: the share wanted
  std::shared_ptr<const RegionMap> map_;
  std::vector<uint8_t> scratch_;
  const uint8_t* share_[proto::Redundancy::kMaxWidth] = {};
  uint64_t versions_[proto::Redundancy::kMaxWidth] = {};
  uint64_t previous_[proto::Redundancy::kMaxWidth] = {};
  uint32_t has_previous_ = 0;  // shares that sent a previous version
  uint32_t asked_ = 0;    // shares asked in this attempt
  uint32_t replied_ = 0;  // of those, replied (ok or not)
  uint32_t have_ = 0;     // of those, replied ok
  int in_flight_ = 0;     // shares sent and not yet replied, across attempts
  int attempts_ = 0;
  bool stale_ = false;
  bool reported_ = false;
  bool with_previous_ = false;
  bool conflict_ = false;
  bool superseded_ = false;
  uint64_t newest_held_ = 0;
  int rebases_ = 0;
  bool taken_ = false;
  bool checked_map_ = false;  // refreshed the map once because nodes were unreachable
  int resolves_ = 0;
  // When this read first found its shares' versions disagreeing; it reads
  // again until they agree or kMixedRetryNs passes.
  uint64_t mixed_since_ns_ = 0;
  static constexpr uint64_t kMixedRetryNs = 200'000'000;
  State state_ = State::kIssued;
  Status outcome_;
  Status first_error_;
  std::string unreachable_;  // nodes skipped because this client saw them fail
};

}  // namespace tessera::client
