#include "common/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace tessera {

Result<uint64_t> ParseSize(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("size '" + std::string(text) + "' " + std::string(why) +
                           " (examples: 4096, 512M, 2G, 1.5GiB)");
  };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return bad("does not start with a number");
  std::string number(text.substr(0, i));
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return bad("is not a number");
  std::string_view suffix = text.substr(i);
  // Grammar of the suffix: [K|M|G|T] ["i"] ["B"], case-insensitive.
  uint64_t unit = 1;
  size_t j = 0;
  auto upper = [&](size_t k) { return std::toupper(static_cast<unsigned char>(suffix[k])); };
  if (j < suffix.size()) {
    int shift = upper(j) == 'K' ? 10 : upper(j) == 'M' ? 20 : upper(j) == 'G' ? 30 : upper(j) == 'T' ? 40 : 0;
    if (shift != 0) {
      unit = 1ull << shift;
      ++j;
      if (j < suffix.size() && upper(j) == 'I') ++j;
    }
  }
  if (j < suffix.size() && upper(j) == 'B') ++j;
  if (j != suffix.size()) return bad("has an unknown unit");
  double bytes = value * static_cast<double>(unit);
  if (!std::isfinite(bytes) || bytes >= 18446744073709551615.0) return bad("is too large");
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

std::string FormatSeconds(double s) {
  char buf[32];
  if (s < 1e-6) {
    std::snprintf(buf, sizeof buf, "%.0f ns", s * 1e9);
  } else if (s < 1e-3) {
    std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  } else if (s < 1) {
    std::snprintf(buf, sizeof buf, "%.1f ms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  }
  return buf;
}

}  // namespace tessera
