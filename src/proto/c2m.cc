#include "proto/c2m.h"

namespace tessera::proto::c2m {

void ReadPages::Encode(Writer& w) const {
  w.U64(region);
  w.U64(epoch);
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
  w.U32(static_cast<uint32_t>(pages.size()));
  for (const PageData& p : pages) {
    w.U64(p.version);
    w.U32(p.crc);
    w.Blob(p.data);
  }
}

Result<ReadPagesReply> ReadPagesReply::Decode(ByteSpan body) {
  Reader r(body);
  ReadPagesReply m;
  uint32_t n = r.Count(16, kMaxPagesPerRequest, "page");
  m.pages.resize(n);
  for (PageData& p : m.pages) {
    p.version = r.U64();
    p.crc = r.U32();
    p.data = r.Blob();
  }
  TS_RETURN_IF_ERROR(r.Finish("c2m::ReadPagesReply"));
  return m;
}

void WritePages::Encode(Writer& w) const {
  w.U64(region);
  w.U64(epoch);
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
  uint32_t n = r.Count(24, kMaxPagesPerRequest, "page");
  if (r.ok() && n == 0) r.Fail("no pages to write");
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

}  // namespace tessera::proto::c2m
