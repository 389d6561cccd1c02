// Opcodes of every Tessera request, grouped by direction like LegoOS's
// p2m/m2s messages: c2m = client to memory node, c2ctl = client to controller,
// ctl2m = controller to memory node, m2ctl = memory node to controller.
// A reply carries its request's opcode with kReplyBit set. Values are frozen:
// they are the wire.
//
// Thread-safety: constants.
#pragma once

#include <cstdint>
#include <string_view>

namespace tessera::proto {

inline constexpr uint8_t kReplyBit = 0x80;

enum class Op : uint8_t {
  kC2mReadPages = 0x01,
  kC2mWritePages = 0x02,

  kCtl2mAllocFragments = 0x10,
  kCtl2mFreeRegion = 0x11,
  kCtl2mSetEpoch = 0x12,
  kCtl2mCloneFragments = 0x13,
  kCtl2mFreeFragments = 0x14,

  kM2ctlRegister = 0x20,
  kM2ctlHeartbeat = 0x21,

  kC2ctlCreateRegion = 0x30,
  kC2ctlOpenRegion = 0x31,
  kC2ctlDeleteRegion = 0x32,
  kC2ctlListRegions = 0x33,
  kC2ctlClusterStatus = 0x34,
  kC2ctlCloneRegion = 0x35,
  kC2ctlRenewLeases = 0x36,
  kC2ctlWatchMaps = 0x37,
};

bool IsKnownOpcode(uint8_t op);
// "c2m::ReadPages"; "unknown" for anything else.
std::string_view OpName(uint8_t op);

}  // namespace tessera::proto
