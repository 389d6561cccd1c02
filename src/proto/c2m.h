// c2m: messages from a client to a memory node — the data plane.
//
// A client names what it wants by (region, fragment, slot): a region's pages
// are cut into stripes, each stripe into fragments placed on distinct memory
// nodes by the controller, and a slot is one page's share of a fragment (a
// whole page, or 1/k of it under erasure coding). The memory node translates
// that name to its own memory; addresses never leave it.
//
//   ReadPages       = region:u64 epoch:u64 count:u32 { fragment:u32 slot:u32 }*count
//   ReadPagesReply  = count:u32 { version:u64 crc:u32 data:blob }*count
//   WritePages      = region:u64 epoch:u64 count:u32
//                     { fragment:u32 slot:u32 version:u64 crc:u32 data:blob }*count
//   WritePagesReply = (empty)
//
// 1 <= count <= kMaxPagesPerRequest; crc is the CRC32C of data; every blob is
// exactly the fragment's slot size (checked by the memory node, which knows it).
// epoch is the region map the client used; a node that knows a newer one
// answers "stale map". A write lands only if its version is newer than the
// slot's (a never-written slot has version 0), so of two writes the newer
// version wins on every node whatever order they arrive in.
//
// Thread-safety: value types. Decoded ByteSpans point into the frame body and
// live as long as it does.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "proto/opcode.h"
#include "proto/wire.h"

namespace tessera::proto::c2m {

inline constexpr uint32_t kMaxPagesPerRequest = 4096;
inline constexpr uint32_t kMaxSlotSize = 64 * 1024;

struct PageRef {
  uint32_t fragment = 0;
  uint32_t slot = 0;
};

struct PageData {
  uint64_t version = 0;
  uint32_t crc = 0;
  ByteSpan data;
};

struct ReadPagesReply {
  std::vector<PageData> pages;
  void Encode(Writer& w) const;
  static Result<ReadPagesReply> Decode(ByteSpan body);
};

struct ReadPages {
  static constexpr Op kOp = Op::kC2mReadPages;
  using Reply = ReadPagesReply;
  uint64_t region = 0;
  uint64_t epoch = 0;
  std::vector<PageRef> pages;
  void Encode(Writer& w) const;
  static Result<ReadPages> Decode(ByteSpan body);
};

struct WritePage {
  PageRef ref;
  uint64_t version = 0;
  uint32_t crc = 0;
  ByteSpan data;
};

struct WritePages {
  static constexpr Op kOp = Op::kC2mWritePages;
  using Reply = Empty;
  uint64_t region = 0;
  uint64_t epoch = 0;
  std::vector<WritePage> pages;
  void Encode(Writer& w) const;
  static Result<WritePages> Decode(ByteSpan body);
};

}  // namespace tessera::proto::c2m
