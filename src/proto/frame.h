// The frame: how every Tessera message travels on a byte stream.
//
//   frame      = header body
//   header     = magic:u16 version:u8 opcode:u8 status:u16 reserved:u16
//                body_len:u32 request_id:u64                       (20 bytes)
//   magic      = 0x5354 ("TS" on the wire)
//   version    = 3
//   opcode     = a request opcode (opcode.h), or request | 0x80 for its reply
//   status     = 0 in requests; in replies a tessera::Code. A non-zero status
//                reply carries body = message:string instead of the reply body.
//   reserved   = 0
//   body_len   <= kMaxBody
//   request_id = chosen by the requester, echoed in the reply; replies on one
//                connection may arrive in any order.
//
// DecodeHeader rejects every header that breaks these rules. A receiver that
// gets a bad header cannot find the next frame boundary, so it closes the
// connection; a good header with a body that does not decode gets an error
// reply and the connection lives on.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "proto/opcode.h"
#include "proto/wire.h"

namespace tessera::proto {

inline constexpr uint16_t kMagic = 0x5354;
inline constexpr uint8_t kVersion = 3;
inline constexpr size_t kHeaderSize = 20;
// Large enough for a 4096-page batch of 4 KiB pages or a region map of ~1 M
// fragments; small enough that a hostile length cannot exhaust memory.
inline constexpr uint32_t kMaxBody = 24u << 20;

struct FrameHeader {
  uint8_t opcode = 0;
  uint16_t status = 0;
  uint32_t body_len = 0;
  uint64_t request_id = 0;

  bool is_reply() const { return (opcode & kReplyBit) != 0; }
};

// Writes the 20 header bytes to `out` (which must have room).
void EncodeHeader(const FrameHeader& h, uint8_t* out);
// Appends a header with body_len filled in later by PatchBodyLength.
void AppendHeader(const FrameHeader& h, Bytes* out);
// Sets body_len of the frame that starts at `frame_start` in `out` to cover
// everything after its header.
void PatchBodyLength(Bytes* out, size_t frame_start);

// Validates and decodes exactly kHeaderSize bytes.
Result<FrameHeader> DecodeHeader(ByteSpan bytes);


// Appends a whole frame: header (opcode, request_id, status 0) and m's body.
template <typename M>
void AppendFrame(uint8_t opcode, uint64_t request_id, const M& m, Bytes* out) {
  size_t start = out->size();
  AppendHeader({.opcode = opcode, .status = 0, .body_len = 0, .request_id = request_id}, out);
  Writer w(out);
  m.Encode(w);
  PatchBodyLength(out, start);
}

// Appends the reply frame to `req` carrying a successful reply message.
template <typename M>
void AppendReply(const FrameHeader& req, const M& m, Bytes* out) {
  AppendFrame(static_cast<uint8_t>(req.opcode | kReplyBit), req.request_id, m, out);
}

// Appends the reply frame to `req` carrying a non-ok status and its message.
void AppendErrorReply(const FrameHeader& req, const Status& s, Bytes* out);

// Turns a reply frame into M, or into the Status an error reply carries.
Status ReplyStatus(const FrameHeader& reply, ByteSpan body);
template <typename M>
Result<M> DecodeReply(const FrameHeader& reply, ByteSpan body) {
  TS_RETURN_IF_ERROR(ReplyStatus(reply, body));
  return M::Decode(body);
}

}  // namespace tessera::proto
