// A verifiable page pattern: every byte of a page derives from (page number,
// version), so a reader can tell which write it got back, and a page that
// mixes two writes or comes from the wrong place never verifies. Used by the
// workload of `tessera demo`, the benchmark and the tests.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>

namespace tessera {

// The pattern's word stream: xorshift64 seeded by (page, version).
class PatternWords {
 public:
  PatternWords(uint64_t page, uint64_t version)
      : x_(page * 0x9E3779B97F4A7C15ull ^ (version + 1) * 0xC2B2AE3D27D4EB4Full) {}
  uint64_t Next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }

 private:
  uint64_t x_;
};

// The first 16 bytes are the page number and version; the rest is the stream.
inline void FillPattern(uint8_t* p, uint32_t size, uint64_t page, uint64_t version) {
  PatternWords words(page, version);
  for (uint32_t i = 0; i + 8 <= size; i += 8) {
    uint64_t w = words.Next();
    std::memcpy(p + i, &w, 8);
  }
  std::memcpy(p, &page, 8);
  std::memcpy(p + 8, &version, 8);
}

// True if `p` is exactly the pattern of (page, some version); sets *version.
inline bool CheckPattern(const uint8_t* p, uint32_t size, uint64_t page, uint64_t* version) {
  uint64_t got_page;
  std::memcpy(&got_page, p, 8);
  std::memcpy(version, p + 8, 8);
  if (got_page != page) return false;
  PatternWords words(page, *version);
  for (uint32_t i = 0; i + 8 <= size; i += 8) {
    uint64_t w = words.Next();
    if (i >= 16 && std::memcmp(p + i, &w, 8) != 0) return false;
  }
  return true;
}

}  // namespace tessera
