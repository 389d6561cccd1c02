#include "proto/c2m.h"

namespace tessera::proto::c2m {

namespace {

void EncodeSlot(Writer& w, const PageData& p) {
  w.U64(p.version);
  w.U32(p.crc);
  w.Blob(p.data);
}

void DecodeSlot(Reader& r, PageData* p) {
  p->version = r.U64();
  p->crc = r.U32();
  p->data = r.Blob();
}

void CheckFlags(Reader& r, uint8_t flags) {
  if (flags & ~kWithPrevious) r.Fail("unknown read flags " + std::to_string(flags));
}

}  // namespace

void ReadPages::Encode(Writer& w) const {
  w.U64(region);
  w.U64(epoch);
  w.U8(flags);
  w.U32(static_cast<uint32_t>(pages.size()));
  for (const PageRef& p : pages) {
    w.U32(p.fragment);
    w.U32(p.slot);
  }
}

Result<ReadPages> ReadPages::Decode(ByteSpan body) {
  Reader r(body);
  ReadPages m;
  m.region = r.U64();
  m.epoch = r.U64();
  m.flags = r.U8();
  CheckFlags(r, m.flags);
  uint32_t n = r.Count(8, kMaxPagesPerRequest, "page");
  if (r.ok() && n == 0) r.Fail("no pages requested");
  m.pages.resize(n);
  for (PageRef& p : m.pages) {
    p.fragment = r.U32();
    p.slot = r.U32();
  }
  TS_RETURN_IF_ERROR(r.Finish("c2m::ReadPages"));
  return m;
}

void ReadPagesReply::Encode(Writer& w) const {
  w.U8(flags);
  w.U32(static_cast<uint32_t>(pages.size()));
  for (size_t i = 0; i < pages.size(); ++i) {
    EncodeSlot(w, pages[i]);
    if (flags & kWithPrevious) EncodeSlot(w, previous[i]);
  }
}

Result<ReadPagesReply> ReadPagesReply::Decode(ByteSpan body) {
  Reader r(body);
  ReadPagesReply m;
  m.flags = r.U8();
  CheckFlags(r, m.flags);
  const bool prev = m.flags & kWithPrevious;
  uint32_t n = r.Count(prev ? 32 : 16, kMaxPagesPerRequest, "page");
  m.pages.resize(n);
  if (prev) m.previous.resize(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    DecodeSlot(r, &m.pages[i]);
    if (prev) DecodeSlot(r, &m.previous[i]);
  }
  TS_RETURN_IF_ERROR(r.Finish("c2m::ReadPagesReply"));
  return m;
}

void WritePages::Encode(Writer& w) const {
  w.U64(region);
  w.U64(epoch);
  w.U64(writer);
  w.U64(done_below);
  w.U8(static_cast<uint8_t>(mode));
  w.U32(static_cast<uint32_t>(pages.size()));
  for (const WritePage& p : pages) {
    w.U32(p.ref.fragment);
    w.U32(p.ref.slot);
    w.U64(p.version);
    w.U32(p.crc);
    w.Blob(p.data);
  }
}

Result<WritePages> WritePages::Decode(ByteSpan body) {
  Reader r(body);
  WritePages m;
  m.region = r.U64();
  m.epoch = r.U64();
  m.writer = r.U64();
  m.done_below = r.U64();
  uint8_t mode = r.U8();
  if (mode > static_cast<uint8_t>(WriteMode::kResolve)) r.Fail("unknown write mode " + std::to_string(mode));
  m.mode = static_cast<WriteMode>(mode);
  uint32_t n = r.Count(24, kMaxPagesPerRequest, "page");
  if (r.ok() && n == 0 && m.mode != WriteMode::kWrite) r.Fail("no pages to write");
  m.pages.resize(n);
  for (WritePage& p : m.pages) {
    p.ref.fragment = r.U32();
    p.ref.slot = r.U32();
    p.version = r.U64();
    p.crc = r.U32();
    p.data = r.Blob();
    if (p.data.size() > kMaxSlotSize) r.Fail("page of " + std::to_string(p.data.size()) + " bytes");
  }
  TS_RETURN_IF_ERROR(r.Finish("c2m::WritePages"));
  return m;
}

void WritePagesReply::Encode(Writer& w) const {
  w.U32(static_cast<uint32_t>(unapplied.size()));
  for (const Unapplied& u : unapplied) {
    w.U32(u.index);
    w.U8(static_cast<uint8_t>(u.reason));
    w.U64(u.held);
  }
}

Result<WritePagesReply> WritePagesReply::Decode(ByteSpan body) {
  Reader r(body);
  WritePagesReply m;
  m.unapplied.resize(r.Count(13, kMaxPagesPerRequest, "unapplied page"));
  for (Unapplied& u : m.unapplied) {
    u.index = r.U32();
    const uint8_t reason = r.U8();
    if (reason != static_cast<uint8_t>(Unapplied::Reason::kConflict) &&
        reason != static_cast<uint8_t>(Unapplied::Reason::kSuperseded)) {
      r.Fail("unknown reason " + std::to_string(reason) + " for an unapplied page");
    }
    u.reason = static_cast<Unapplied::Reason>(reason);
    u.held = r.U64();
  }
  TS_RETURN_IF_ERROR(r.Finish("c2m::WritePagesReply"));
  return m;
}

}  // namespace tessera::proto::c2m
