// c2m: messages from a client to a memory node — the data plane.
//
// A client names what it wants by (region, fragment, slot): a region's pages
// are cut into stripes, each stripe into fragments placed on distinct memory
// nodes by the controller, and a slot is one page's share of a fragment (a
// whole page, or 1/k of it under erasure coding). The memory node translates
// that name to its own memory; addresses never leave it.
//
//   ReadPages       = region:u64 epoch:u64 flags:u8 count:u32 { fragment:u32 slot:u32 }*count
//   ReadPagesReply  = flags:u8 count:u32 { Slot [Slot] }*count   ; the second iff flags & kWithPrevious
//   Slot            = version:u64 crc:u32 data:blob
//   WritePages      = region:u64 epoch:u64 writer:u64 done_below:u64 mode:u8 count:u32
//                     { fragment:u32 slot:u32 version:u64 crc:u32 data:blob }*count
//   WritePagesReply = count:u32 { index:u32 }*count              ; pages not written: conflicts
//
// 1 <= count <= kMaxPagesPerRequest (a WritePages in mode kWrite may carry 0
// pages: it only moves the writer's watermark); crc is the CRC32C of data;
// every blob is exactly the fragment's slot size (checked by the memory node,
// which knows it), except an absent previous Slot: version 0, empty data; and
// a WritePages data blob may be empty: the share is zeros (crc is then the
// CRC32C of slot-size zeros), sent without them, and the node may give the
// memory it held back to the OS (a program's freed memory, issue 4).
// epoch is the region map the client used; a node that knows a newer one
// answers "stale map". A write lands only if its version is newer than the
// slot's (a never-written slot has version 0), so of two writes the newer
// version wins on every node whatever order they arrive in.
//
// The write hole. A page write touches k+m nodes and its writer can die
// between them, so a node keeps, beside each slot's newest version, the
// version it replaced (the "previous") until the writer says its write is
// complete everywhere: done_below = every write of this writer (a random
// non-zero id per client) with a version below it has been answered by every
// node it went to. A reader that finds no k shares agreeing asks again with
// kWithPrevious and takes the newest version k shares hold as current or
// previous. A client never has two writes of one page in flight, so a
// writer's next write to a slot also completes its last one there.
// A write (mode kWrite) to a slot whose newest version is another writer's
// unfinished write is not applied: its index comes back as a conflict, and
// the writer first settles the page with mode kResolve, which writes the
// newest version k shares hold (rolling a slot back only to undo the
// resolver's own write or a write left unfinished for longer than the node's
// orphan timeout). Mode kCommit (the controller's rebuild) installs a
// version if it is newer and marks it complete.
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

inline constexpr uint8_t kWithPrevious = 1;

struct ReadPagesReply {
  uint8_t flags = 0;
  std::vector<PageData> pages;
  std::vector<PageData> previous;  // one per page iff flags & kWithPrevious
  void Encode(Writer& w) const;
  static Result<ReadPagesReply> Decode(ByteSpan body);
};

struct ReadPages {
  static constexpr Op kOp = Op::kC2mReadPages;
  using Reply = ReadPagesReply;
  uint64_t region = 0;
  uint64_t epoch = 0;
  uint8_t flags = 0;
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

enum class WriteMode : uint8_t { kWrite = 0, kCommit = 1, kResolve = 2 };

struct WritePagesReply {
  std::vector<uint32_t> conflicts;  // indexes into the request's pages
  void Encode(Writer& w) const;
  static Result<WritePagesReply> Decode(ByteSpan body);
};

struct WritePages {
  static constexpr Op kOp = Op::kC2mWritePages;
  using Reply = WritePagesReply;
  uint64_t region = 0;
  uint64_t epoch = 0;
  uint64_t writer = 0;
  uint64_t done_below = 0;
  WriteMode mode = WriteMode::kWrite;
  std::vector<WritePage> pages;
  void Encode(Writer& w) const;
  static Result<WritePages> Decode(ByteSpan body);
};

}  // namespace tessera::proto::c2m
