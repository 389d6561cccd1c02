#include "proto/opcode.h"

namespace tessera::proto {

std::string_view OpName(uint8_t op) {
  switch (static_cast<Op>(op & ~kReplyBit)) {
    case Op::kC2mReadPages: return "c2m::ReadPages";
    case Op::kC2mWritePages: return "c2m::WritePages";
    case Op::kCtl2mAllocFragments: return "ctl2m::AllocFragments";
    case Op::kCtl2mFreeRegion: return "ctl2m::FreeRegion";
    case Op::kCtl2mSetEpoch: return "ctl2m::SetEpoch";
    case Op::kCtl2mCloneFragments: return "ctl2m::CloneFragments";
    case Op::kCtl2mFreeFragments: return "ctl2m::FreeFragments";
    case Op::kM2ctlRegister: return "m2ctl::Register";
    case Op::kM2ctlHeartbeat: return "m2ctl::Heartbeat";
    case Op::kC2ctlCreateRegion: return "c2ctl::CreateRegion";
    case Op::kC2ctlOpenRegion: return "c2ctl::OpenRegion";
    case Op::kC2ctlDeleteRegion: return "c2ctl::DeleteRegion";
    case Op::kC2ctlListRegions: return "c2ctl::ListRegions";
    case Op::kC2ctlClusterStatus: return "c2ctl::ClusterStatus";
    case Op::kC2ctlCloneRegion: return "c2ctl::CloneRegion";
    case Op::kC2ctlRenewLeases: return "c2ctl::RenewLeases";
    case Op::kC2ctlWatchMaps: return "c2ctl::WatchMaps";
  }
  return "unknown";
}

bool IsKnownOpcode(uint8_t op) { return OpName(op) != "unknown"; }

}  // namespace tessera::proto
