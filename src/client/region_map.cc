#include "client/region_map.h"

namespace tessera::client {

Result<std::shared_ptr<const RegionMap>> RegionMap::Make(proto::c2ctl::RegionInfo info) {
  TS_ASSIGN_OR_RETURN(auto codec, PageCodec::Create(info.redundancy, info.page_size));
  return std::shared_ptr<const RegionMap>(new RegionMap(std::move(info), std::move(codec)));
}

RegionMap::RegionMap(proto::c2ctl::RegionInfo info, std::unique_ptr<PageCodec> codec)
    : info_(std::move(info)), codec_(std::move(codec)) {
  for (const auto& n : info_.nodes) addresses_.push_back(n.addr);
}

}  // namespace tessera::client
