#include "proto/redundancy.h"

#include <charconv>


namespace tessera::proto {
namespace {

// Parses a whole decimal number in [lo, hi].
bool ParseNumber(std::string_view s, int lo, int hi, int* out) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

std::string Redundancy::ToString() const {
  switch (kind) {
    case Kind::kNone: return "none";
    case Kind::kReplicas: return "replicas:" + std::to_string(m + 1);
    case Kind::kErasure: return "ec:" + std::to_string(k) + "+" + std::to_string(m);
  }
  return "?";
}

void Redundancy::Encode(Writer& w) const {
  w.U8(static_cast<uint8_t>(kind));
  w.U8(k);
  w.U8(m);
}

void Redundancy::Read(Reader& r, Redundancy* out) {
  uint8_t kind = r.U8();
  out->k = r.U8();
  out->m = r.U8();
  if (!r.ok()) return;
  out->kind = static_cast<Kind>(kind);
  bool shape_ok = false;
  switch (out->kind) {
    case Kind::kNone: shape_ok = out->k == 1 && out->m == 0; break;
    case Kind::kReplicas: shape_ok = out->k == 1 && out->m >= 1; break;
    case Kind::kErasure: shape_ok = out->k >= 1 && out->m >= 1; break;
    default: r.Fail("redundancy kind " + std::to_string(kind)); return;
  }
  if (!shape_ok || out->width() > kMaxWidth) {
    r.Fail("redundancy kind " + std::to_string(kind) + " with " + std::to_string(out->k) + "+" +
           std::to_string(out->m) + " fragments");
  }
}

Result<Redundancy> ParseRedundancy(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("redundancy '" + std::string(text) + "' " + std::string(why) +
                           " (expected none, replicas:N with N from 2 to 8, or ec:K+M with K+M <= " +
                           std::to_string(Redundancy::kMaxWidth) + ", e.g. ec:4+2)");
  };
  if (text == "none") return Redundancy::None();
  if (text.starts_with("replicas:")) {
    int n;
    if (!ParseNumber(text.substr(9), 2, 8, &n)) return bad("has a bad replica count");
    return Redundancy::Replicas(static_cast<uint8_t>(n));
  }
  if (text.starts_with("ec:")) {
    std::string_view km = text.substr(3);
    size_t plus = km.find('+');
    int k, m;
    if (plus == std::string_view::npos || !ParseNumber(km.substr(0, plus), 1, 31, &k) ||
        !ParseNumber(km.substr(plus + 1), 1, 31, &m)) {
      return bad("is not ec:K+M");
    }
    if (k + m > Redundancy::kMaxWidth) return bad("is too wide");
    return Redundancy::Erasure(static_cast<uint8_t>(k), static_cast<uint8_t>(m));
  }
  return bad("is not a known scheme");
}

}  // namespace tessera::proto
