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
//   WritePagesReply = count:u32 { index:u32 reason:u8 held:u64 }*count ; pages not applied
//     reason 1 conflict:   the slot's newest version, held, is another
//                          writer's unfinished write (below)
//     reason 2 superseded: the slot already holds version held, at least as
//                          new as the page's: the write did not land
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
// version wins on every node whatever order they arrive in. A write that
// does not land is never acknowledged silently: the reply names it, with the
// version the slot holds, and the client writes again above that version.
//
// Versions. A version is its writer's clock: microseconds since the Unix
// epoch shifted left by kVersionNonceBits, with a per-client random nonce in
// the low bits (client/version_clock.h keeps it above every version the
// client has seen). A memory node refuses the whole WritePages with a "clock
// skew" error if any page's version is more than its limit (memnode
// --max-clock-ahead-ms, 5 s by default) past the node's own clock: one writer
// with a clock far ahead must not pin pages for everyone.
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
inline constexpr int kVersionNonceBits = 12;
// The clock reading a version carries, in microseconds since the Unix epoch.
inline constexpr uint64_t VersionMicros(uint64_t version) { return version >> kVersionNonceBits; }
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

// A page of a WritePages that did not land, and why.
struct Unapplied {
  enum class Reason : uint8_t { kConflict = 1, kSuperseded = 2 };
  uint32_t index = 0;  // into the request's pages
  Reason reason = Reason::kConflict;
  uint64_t held = 0;  // the slot's version
  bool operator==(const Unapplied&) const = default;
};

struct WritePagesReply {
  std::vector<Unapplied> unapplied;
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
