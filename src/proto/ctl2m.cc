#include "proto/ctl2m.h"

#include "proto/c2m.h"

namespace tessera::proto::ctl2m {

void AllocFragments::Encode(Writer& w) const {
  w.U64(region);
  w.U64(epoch);
  w.U32(static_cast<uint32_t>(fragments.size()));
  for (const FragmentSpec& f : fragments) {
    w.U32(f.fragment);
    w.U32(f.slots);
    w.U32(f.slot_size);
  }
}

Result<AllocFragments> AllocFragments::Decode(ByteSpan body) {
  Reader r(body);
  AllocFragments m;
  m.region = r.U64();
  m.epoch = r.U64();
  uint32_t n = r.Count(12, kMaxFragmentsPerRequest, "fragment");
  if (r.ok() && n == 0) r.Fail("no fragments");
  m.fragments.resize(n);
  for (FragmentSpec& f : m.fragments) {
    f.fragment = r.U32();
    f.slots = r.U32();
    f.slot_size = r.U32();
    if (!r.ok()) break;
    if (f.slots == 0 || f.slots > kMaxSlotsPerFragment) r.Fail("fragment with " + std::to_string(f.slots) + " slots");
    if (f.slot_size == 0 || f.slot_size > c2m::kMaxSlotSize) {
      r.Fail("slot size " + std::to_string(f.slot_size));
    }
  }
  TS_RETURN_IF_ERROR(r.Finish("ctl2m::AllocFragments"));
  return m;
}

Result<FreeRegionReply> FreeRegionReply::Decode(ByteSpan body) {
  Reader r(body);
  FreeRegionReply m;
  m.freed_bytes = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("ctl2m::FreeRegionReply"));
  return m;
}

Result<FreeRegion> FreeRegion::Decode(ByteSpan body) {
  Reader r(body);
  FreeRegion m;
  m.region = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("ctl2m::FreeRegion"));
  return m;
}

Result<SetEpoch> SetEpoch::Decode(ByteSpan body) {
  Reader r(body);
  SetEpoch m;
  m.region = r.U64();
  m.epoch = r.U64();
  TS_RETURN_IF_ERROR(r.Finish("ctl2m::SetEpoch"));
  return m;
}

namespace {

void EncodeFragments(Writer& w, const std::vector<uint32_t>& fragments) {
  w.U32(static_cast<uint32_t>(fragments.size()));
  for (uint32_t f : fragments) w.U32(f);
}

// count:u32 { fragment:u32 }*count, 1 <= count <= kMaxFragmentsPerRequest.
std::vector<uint32_t> DecodeFragments(Reader& r) {
  uint32_t n = r.Count(4, kMaxFragmentsPerRequest, "fragment");
  if (r.ok() && n == 0) r.Fail("no fragments");
  std::vector<uint32_t> fragments(n);
  for (uint32_t& f : fragments) f = r.U32();
  return fragments;
}

}  // namespace

void CloneFragments::Encode(Writer& w) const {
  w.U64(region);
  w.U64(epoch);
  w.U64(source);
  EncodeFragments(w, fragments);
}

Result<CloneFragments> CloneFragments::Decode(ByteSpan body) {
  Reader r(body);
  CloneFragments m;
  m.region = r.U64();
  m.epoch = r.U64();
  m.source = r.U64();
  m.fragments = DecodeFragments(r);
  TS_RETURN_IF_ERROR(r.Finish("ctl2m::CloneFragments"));
  if (m.source == m.region) return InvalidArgument("a region cannot be cloned onto itself");
  return m;
}

void FreeFragments::Encode(Writer& w) const {
  w.U64(region);
  EncodeFragments(w, fragments);
}

Result<FreeFragments> FreeFragments::Decode(ByteSpan body) {
  Reader r(body);
  FreeFragments m;
  m.region = r.U64();
  m.fragments = DecodeFragments(r);
  TS_RETURN_IF_ERROR(r.Finish("ctl2m::FreeFragments"));
  return m;
}

}  // namespace tessera::proto::ctl2m
