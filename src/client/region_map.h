// RegionMap: where each page of a region lives — which memory node, and which
// (fragment, slot) to name there — from the controller's RegionInfo.
//
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/c2ctl.h"

namespace tessera::client {

struct PageLocation {
  uint16_t node = 0;  // index into addresses()
  uint32_t fragment = 0;
  uint32_t slot = 0;
};

class RegionMap {
 public:
  explicit RegionMap(proto::c2ctl::RegionInfo info) : info_(std::move(info)) {
    for (const auto& n : info_.nodes) addresses_.push_back(n.addr);
  }

  PageLocation Locate(uint64_t page) const {
    uint32_t fragment = static_cast<uint32_t>(page / info_.pages_per_fragment);
    return {info_.fragment_nodes[fragment], fragment, static_cast<uint32_t>(page % info_.pages_per_fragment)};
  }
  const std::vector<std::string>& addresses() const { return addresses_; }
  const proto::c2ctl::RegionInfo& info() const { return info_; }

 private:
  proto::c2ctl::RegionInfo info_;
  std::vector<std::string> addresses_;
};

}  // namespace tessera::client
