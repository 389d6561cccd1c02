#include "memnode/version_limit.h"

#include <time.h>

#include <cstdio>
#include <string>

#include "proto/c2m.h"

namespace tessera::memnode {
namespace {

uint64_t WallMicros() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// "2026-12-07 11:00:00.123456 UTC"
std::string FormatMicros(uint64_t us) {
  const time_t secs = static_cast<time_t>(us / 1'000'000);
  tm t;
  char day[32] = "?";
  if (gmtime_r(&secs, &t) != nullptr) strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &t);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%06llu UTC", day, static_cast<unsigned long long>(us % 1'000'000));
  return out;
}

// "3.5 s", "1.0 h", "41 years"
std::string FormatSpan(uint64_t us) {
  char out[32];
  const double s = static_cast<double>(us) / 1e6;
  if (s < 120) {
    std::snprintf(out, sizeof out, "%.1f s", s);
  } else if (s < 2 * 86400) {
    std::snprintf(out, sizeof out, "%.1f h", s / 3600);
  } else if (s < 2 * 365 * 86400.0) {
    std::snprintf(out, sizeof out, "%.0f days", s / 86400);
  } else {
    std::snprintf(out, sizeof out, "%.0f years", s / (365.25 * 86400));
  }
  return out;
}

}  // namespace

Status VersionLimit::Admit(uint64_t version) const {
  const uint64_t at = proto::c2m::VersionMicros(version);
  const uint64_t now = now_us ? now_us() : WallMicros();
  if (at <= now || at - now <= max_ahead_us) return Status::Ok();
  return ClockSkew("a write's version is from the future: its writer's clock read " + FormatMicros(at) +
                   ", this memory node's reads " + FormatMicros(now) + " (" + FormatSpan(at - now) +
                   " ahead; at most " + FormatSpan(max_ahead_us) +
                   " is accepted): set the writer's clock right (NTP) — the write was not applied");
}

}  // namespace tessera::memnode
