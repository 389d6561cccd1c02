// RegionMap: one epoch of a region's map — for every page, which fragments
// hold its shares, on which memory nodes, in which state — plus the codec
// that turns a page into shares and back. A new epoch is a new RegionMap;
// I/O in flight keeps the map it started with (shared_ptr), so a map change
// reaches the client atomically.
//
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/page_codec.h"
#include "proto/c2ctl.h"

namespace tessera::client {

class RegionMap {
 public:
  using FragmentState = proto::c2ctl::FragmentState;

  static Result<std::shared_ptr<const RegionMap>> Make(proto::c2ctl::RegionInfo info);

  const proto::c2ctl::RegionInfo& info() const { return info_; }
  const PageCodec& codec() const { return *codec_; }
  int width() const { return codec_->width(); }
  uint64_t epoch() const { return info_.epoch; }

  // Share j of `page` is slot SlotOf(page) of fragment FragmentOf(page, j).
  uint32_t FragmentOf(uint64_t page, int j) const {
    return static_cast<uint32_t>(page / info_.pages_per_stripe * width() + j);
  }
  uint32_t SlotOf(uint64_t page) const { return static_cast<uint32_t>(page % info_.pages_per_stripe); }
  const std::string& AddressOf(uint32_t fragment) const { return addresses_[info_.fragment_nodes[fragment]]; }
  FragmentState StateOf(uint32_t fragment) const { return info_.fragment_states[fragment]; }
  const std::vector<std::string>& addresses() const { return addresses_; }

 private:
  RegionMap(proto::c2ctl::RegionInfo info, std::unique_ptr<PageCodec> codec);

  proto::c2ctl::RegionInfo info_;
  std::unique_ptr<PageCodec> codec_;
  std::vector<std::string> addresses_;
};

// Where I/O gets the current map, and a newer one when a memory node says
// the one used is stale. Implemented by RegionImpl.
class MapSource {
 public:
  virtual ~MapSource() = default;
  virtual std::shared_ptr<const RegionMap> Current() = 0;
  // Makes Current() newer than `stale_epoch`, asking the controller unless
  // another caller already did.
  virtual Status Refresh(uint64_t stale_epoch) = 0;
};

}  // namespace tessera::client
