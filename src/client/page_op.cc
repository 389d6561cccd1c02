#include "client/page_op.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/clock.h"
#include "ec/version_vote.h"

namespace tessera::client {

PageOp::PageOp(UserOp* op, PageIo::Kind kind, uint64_t page, uint8_t* buf, uint64_t version)
    : op_(op), kind_(kind), page_(page), buf_(buf), version_(version) {}

PageOp* PageOp::ShareRead(UserOp* op, uint64_t page, int share, uint64_t expect, uint8_t* buf) {
  auto* p = new PageOp(op, PageIo::Kind::kRead, page, buf, expect);
  p->wanted_ = share;
  return p;
}

void PageOp::Begin(std::shared_ptr<const RegionMap> map) {
  map_ = std::move(map);
  ++attempts_;
  asked_ = replied_ = have_ = has_previous_ = 0;
  stale_ = conflict_ = superseded_ = with_previous_ = false;
  newest_held_ = 0;
  first_error_ = Status::Ok();
  unreachable_.clear();
  state_ = State::kIssued;
  const PageCodec& codec = map_->codec();
  if (kind_ == PageIo::Kind::kRead) {
    scratch_.resize(static_cast<size_t>(codec.width()) * codec.slot_size());
  } else if (buf_ == nullptr) {
    std::fill(std::begin(share_), std::end(share_), nullptr);  // zeros: every share is zeros, sent as none
  } else {
    scratch_.resize(codec.scratch_bytes());
    codec.Split(buf_, scratch_.data(), share_);
  }
}

bool PageOp::Usable(NodePool& pool, int j) const {
  uint32_t f = map_->FragmentOf(page_, j);
  auto state = map_->StateOf(f);
  // A fragment being rebuilt takes writes (so it is current when the rebuild
  // ends) but has nothing to read yet.
  bool wanted = state == RegionMap::FragmentState::kReady ||
                (kind_ == PageIo::Kind::kWrite && state == RegionMap::FragmentState::kRebuilding);
  return wanted && !pool.IsDown(map_->AddressOf(f));
}

std::vector<int> PageOp::PlanRound(NodePool& pool, int read_extra) {
  const int k = map_->codec().k();
  const int width = map_->width();
  std::vector<int> plan = Choose(pool, read_extra);
  if (plan.empty() && kind_ == PageIo::Kind::kRead && std::popcount(have_) >= k) {
    // Every reachable share answered, enough of them, but no k agree: a write
    // to the page is landing, or its writer died mid-way. Ask them all for
    // their previous versions too (the last complete write is among them);
    // if even that is mixed, a write must be landing: again, for a while.
    uint64_t now = NowNanos();
    if (mixed_since_ns_ == 0) mixed_since_ns_ = now;
    if (!with_previous_ || now - mixed_since_ns_ < kMixedRetryNs) {
      with_previous_ = true;
      // Room for the previous versions, on this rare path only (PreviousBuf).
      scratch_.resize(2 * static_cast<size_t>(width) * map_->codec().slot_size());
      asked_ = replied_ = have_ = has_previous_ = 0;
      plan = Choose(pool, width);
    }
  }
  const bool lone_share = wanted_ >= 0 && asked_ == 0 && plan.size() == 1 && plan[0] == wanted_;
  if ((asked_ == 0 && plan.size() < static_cast<size_t>(k) && !lone_share) || plan.empty()) {
    Status why = Shortfall();
    if (why.code() == Code::kUnavailable && !checked_map_ && in_flight_ == 0) {
      // The nodes this page needs are unreachable, or failed the request:
      // has the controller declared them dead (the page is lost, not just
      // unavailable)? Nodes that could say "stale map" may all be among
      // them: ask once.
      checked_map_ = true;
      state_ = State::kNeedsMap;
      return {};
    }
    Fail(why);
    return {};
  }
  for (int j : plan) asked_ |= 1u << j;
  in_flight_ += static_cast<int>(plan.size());
  state_ = State::kIssued;
  return plan;
}

std::vector<int> PageOp::Choose(NodePool& pool, int read_extra) {
  const int k = map_->codec().k();
  // A share read asks the one node that holds its share first.
  if (wanted_ >= 0 && asked_ == 0 && !with_previous_ && Usable(pool, wanted_)) return {wanted_};
  std::vector<int> plan;
  int spare = 0;
  for (int j = 0; j < map_->width(); ++j) {
    if ((asked_ >> j) & 1) continue;
    if (!Usable(pool, j)) {
      uint32_t f = map_->FragmentOf(page_, j);
      const std::string& addr = map_->AddressOf(f);
      bool down = map_->StateOf(f) == RegionMap::FragmentState::kReady;  // by this client's account
      if (down && unreachable_.find(addr) == std::string::npos) {
        unreachable_ += (unreachable_.empty() ? "" : ", ") + addr;
      }
      continue;
    }
    // Reads start with k (+ extra) shares, data first: the rest only if needed.
    if (kind_ == PageIo::Kind::kRead && asked_ == 0 && static_cast<int>(plan.size()) >= k + read_extra) {
      ++spare;
      continue;
    }
    plan.push_back(j);
  }
  // Too few reachable shares for a first round: nothing is worth sending.
  if (asked_ == 0 && static_cast<int>(plan.size()) + spare < k) plan.clear();
  return plan;
}

Status PageOp::Shortfall() const {
  const int k = map_->codec().k();
  std::string where = "page " + std::to_string(page_) + ": ";
  if (std::popcount(have_) >= k) {
    return DataLoss(where + "its fragments hold different versions and no " + std::to_string(k) +
                    " agree (a write to it was interrupted)");
  }
  std::string count = std::to_string(std::popcount(have_)) + " of " + std::to_string(map_->width()) +
                      " fragments readable, " + std::to_string(k) + " needed";
  int lost = 0;
  for (int j = 0; j < map_->width(); ++j) {
    lost += map_->StateOf(map_->FragmentOf(page_, j)) == RegionMap::FragmentState::kLost;
  }
  if (map_->width() - lost < k) {
    return DataLoss(where + std::to_string(lost) + " of its " + std::to_string(map_->width()) +
                    " fragments are lost (their memory nodes died), " + std::to_string(k) + " needed");
  }
  // Unreachable nodes may come back; fragments the controller declared lost,
  // or that a node no longer has, will not.
  if (!unreachable_.empty()) return Unavailable(where + count + "; unreachable: memory node " + unreachable_);
  if (first_error_.code() == Code::kUnavailable || first_error_.code() == Code::kTimedOut) {
    return Unavailable(where + count + " (" + first_error_.ToString() + ")");
  }
  return DataLoss(where + count + (first_error_.ok() ? "" : " (" + first_error_.ToString() + ")"));
}

PageOp::State PageOp::Record(int j, const Status& status, const ShareReply& reply) {
  --in_flight_;
  if (state_ == State::kSettled) {
    if (in_flight_ == 0) state_ = State::kRetired;
    return state_;
  }
  ++replied_;
  if (status.ok() && reply.conflict) {
    conflict_ = true;
  } else if (status.ok() && reply.superseded && reply.held != version_) {
    // (Holding this very version is having it: an earlier attempt's share.)
    superseded_ = true;
    newest_held_ = std::max(newest_held_, reply.held);
  } else if (status.ok()) {
    have_ |= 1u << j;
    versions_[j] = reply.version;
    if (kind_ == PageIo::Kind::kRead) {
      std::memcpy(ShareBuf(j), reply.data.data(), reply.data.size());
      if (reply.has_previous && with_previous_) {  // scratch has room only then
        has_previous_ |= 1u << j;
        previous_[j] = reply.previous_version;
        std::memcpy(PreviousBuf(j), reply.previous.data(), reply.previous.size());
      }
    }
  } else {
    if (status.code() == Code::kStaleMap) stale_ = true;
    if (first_error_.ok()) first_error_ = status;
  }
  if (kind_ == PageIo::Kind::kRead) TrySettleRead();
  if (state_ != State::kSettled && replied_ == static_cast<uint32_t>(std::popcount(asked_))) AfterLastReply();
  if (state_ == State::kSettled && in_flight_ == 0) state_ = State::kRetired;
  return state_;
}

void PageOp::TrySettleRead() {
  if (wanted_ >= 0 && TrySettleShare()) return;
  ec::VersionOffer offers[2 * proto::Redundancy::kMaxWidth];
  size_t n = 0;
  for (uint32_t rest = have_; rest != 0; rest &= rest - 1) {
    int j = std::countr_zero(rest);
    offers[n++] = {j, versions_[j]};
    if ((has_previous_ >> j) & 1) offers[n++] = {j, previous_[j]};
  }
  std::optional<ec::Vote> vote = ec::NewestWithQuorum(std::span(offers, n), map_->codec().k());
  if (!vote) return;
  // Join reads the current slots: put the previous version where it is the one.
  const size_t slot = map_->codec().slot_size();
  for (uint32_t m = vote->shares; m != 0; m &= m - 1) {
    int j = std::countr_zero(m);
    if (versions_[j] != vote->version) std::memcpy(ShareBuf(j), PreviousBuf(j), slot);
  }
  if (wanted_ >= 0) {
    // Rows are written once: a quorum on another version means the row was
    // written again, and the page the caller knew is gone from it.
    if (vote->version != version_) {
      outcome_ = DataLoss("page " + std::to_string(page_) + " holds version " + std::to_string(vote->version) +
                          ", not the expected " + std::to_string(version_));
      state_ = State::kSettled;
      return;
    }
    return SettleShareFromPage(vote->shares);
  }
  outcome_ = map_->codec().Join(scratch_.data(), vote->shares, buf_);
  state_ = State::kSettled;
}

bool PageOp::TrySettleShare() {
  if (!((have_ >> wanted_) & 1) || versions_[wanted_] != version_) return false;
  std::memcpy(buf_, ShareBuf(wanted_), map_->codec().slot_size());
  outcome_ = Status::Ok();
  state_ = State::kSettled;
  return true;
}

void PageOp::SettleShareFromPage(uint32_t shares) {
  const PageCodec& codec = map_->codec();
  std::vector<uint8_t> page(codec.page_size());
  outcome_ = codec.Join(scratch_.data(), shares, page.data());
  if (outcome_.ok()) std::memcpy(buf_, page.data() + static_cast<size_t>(wanted_) * codec.slot_size(), codec.slot_size());
  state_ = State::kSettled;
}

void PageOp::SettleWrite() {
  // Only shares a reader would use count: a fragment still being rebuilt
  // holds the write but is not read until the rebuild finishes.
  int readable = 0;
  for (uint32_t m = have_; m != 0; m &= m - 1) {
    readable += map_->StateOf(map_->FragmentOf(page_, std::countr_zero(m))) == RegionMap::FragmentState::kReady;
  }
  const int k = map_->codec().k();
  if (readable >= k) {
    outcome_ = Status::Ok();
  } else {
    outcome_ = (first_error_.ok() ? Unavailable("no memory node took it") : first_error_)
                   .With("page " + std::to_string(page_) + " reached " + std::to_string(readable) + " of " +
                         std::to_string(k) + " fragments needed");
  }
  state_ = State::kSettled;
}

void PageOp::AfterLastReply() {
  if (stale_) {
    state_ = State::kNeedsMap;
    return;
  }
  if (kind_ == PageIo::Kind::kWrite) {
    if (conflict_) {
      state_ = State::kNeedsResolve;
      return;
    }
    if (superseded_) {
      state_ = State::kNeedsVersion;
      return;
    }
    return SettleWrite();
  }
  // A read that did not settle: PlanRound decides what to ask next.
  state_ = State::kNeedsRound;
}

void PageOp::Fail(const Status& why) {
  outcome_ = why;
  state_ = in_flight_ == 0 ? State::kRetired : State::kSettled;
}

}  // namespace tessera::client
