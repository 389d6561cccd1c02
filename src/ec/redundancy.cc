#include "ec/redundancy.h"

#include <charconv>

#include "ec/reed_solomon.h"

namespace tessera::ec {
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
    case Kind::kReplicas: return "replicas:" + std::to_string(parity + 1);
    case Kind::kErasure: return "ec:" + std::to_string(data) + "+" + std::to_string(parity);
  }
  return "?";
}

Result<Redundancy> ParseRedundancy(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("redundancy '" + std::string(text) + "' " + std::string(why) +
                           " (expected none, replicas:N with N from 2 to 8, or ec:K+M with K+M <= " +
                           std::to_string(ReedSolomon::kMaxFragments) + ", e.g. ec:4+2)");
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
    if (k + m > ReedSolomon::kMaxFragments) return bad("is too wide");
    return Redundancy::Erasure(static_cast<uint8_t>(k), static_cast<uint8_t>(m));
  }
  return bad("is not a known scheme");
}

}  // namespace tessera::ec
