#include "proto/frame.h"

#include <cstdio>
#include <cstring>

#include "common/check.h"

namespace tessera::proto {

void EncodeHeader(const FrameHeader& h, uint8_t* out) {
  Bytes tmp;
  tmp.reserve(kHeaderSize);
  Writer w(&tmp);
  w.U16(kMagic);
  w.U8(kVersion);
  w.U8(h.opcode);
  w.U16(h.status);
  w.U16(0);
  w.U32(h.body_len);
  w.U64(h.request_id);
  std::memcpy(out, tmp.data(), kHeaderSize);
}

void AppendHeader(const FrameHeader& h, Bytes* out) {
  size_t at = out->size();
  out->resize(at + kHeaderSize);
  EncodeHeader(h, out->data() + at);
}

void PatchBodyLength(Bytes* out, size_t frame_start) {
  CHECK(out->size() >= frame_start + kHeaderSize);
  size_t body = out->size() - frame_start - kHeaderSize;
  CHECK(body <= kMaxBody) << "encoded body of " << body << " bytes";
  uint32_t len = static_cast<uint32_t>(body);
  std::memcpy(out->data() + frame_start + 8, &len, sizeof len);
}

Result<FrameHeader> DecodeHeader(ByteSpan bytes) {
  CHECK(bytes.size() == kHeaderSize);
  Reader r(bytes);
  uint16_t magic = r.U16();
  uint8_t version = r.U8();
  FrameHeader h;
  h.opcode = r.U8();
  h.status = r.U16();
  uint16_t reserved = r.U16();
  h.body_len = r.U32();
  h.request_id = r.U64();
  if (magic != kMagic) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%04x", magic);
    return ProtocolError(std::string("bad magic 0x") + hex + ": the peer does not speak Tessera's protocol");
  }
  if (version != kVersion) {
    return ProtocolError("protocol version " + std::to_string(version) + " (this build speaks " +
                         std::to_string(kVersion) + ")");
  }
  if (reserved != 0) return ProtocolError("reserved header field is not zero");
  if (!IsKnownOpcode(static_cast<uint8_t>(h.opcode & ~kReplyBit))) {
    return ProtocolError("unknown opcode " + std::to_string(h.opcode));
  }
  if (!h.is_reply() && h.status != 0) return ProtocolError("request carries a status");
  if (h.body_len > kMaxBody) {
    return ProtocolError("body of " + std::to_string(h.body_len) + " bytes exceeds the limit of " +
                         std::to_string(kMaxBody));
  }
  return h;
}


void AppendErrorReply(const FrameHeader& req, const Status& s, Bytes* out) {
  CHECK(!s.ok());
  size_t start = out->size();
  AppendHeader({.opcode = static_cast<uint8_t>(req.opcode | kReplyBit),
                .status = static_cast<uint16_t>(s.code()),
                .body_len = 0,
                .request_id = req.request_id},
               out);
  Writer w(out);
  std::string_view msg = s.message();
  w.String(msg.substr(0, kMaxString));
  PatchBodyLength(out, start);
}

Status ReplyStatus(const FrameHeader& reply, ByteSpan body) {
  if (reply.status == 0) return Status::Ok();
  Reader r(body);
  std::string msg = r.String();
  if (!r.Finish("error reply").ok()) msg = "(unreadable error message)";
  if (reply.status > static_cast<uint16_t>(kLastCode)) {
    return ProtocolError("peer replied with unknown status " + std::to_string(reply.status) + ": " + msg);
  }
  return Status(static_cast<Code>(reply.status), msg);
}

}  // namespace tessera::proto
