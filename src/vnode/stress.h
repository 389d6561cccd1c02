// Test support: page contents whose every word derives from (page, version),
// version 0 being all zeros as a never-written page reads, and a stress over
// a served range in which many threads fault, write, read and discard at
// once with every byte checked. Used by the pager's tests (a range served in
// the same process) and by the agent's test program (served from another).
//
// Thread-safety: Run starts and joins its own threads.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tessera::vnode::stress {

constexpr size_t kPage = 4096;
constexpr size_t kWords = kPage / sizeof(uint64_t);

inline uint64_t Word(uint64_t page, uint64_t version, size_t i) {
  uint64_t x = (page * 0x9E3779B97F4A7C15ull) ^ (version * 0xBF58476D1CE4E5B9ull) ^ (i * 0x94D049BB133111EBull);
  return x ^ (x >> 29);
}

// Word 0 holds the version.
inline void Fill(uint8_t* p, uint64_t page, uint64_t version) {
  auto* w = reinterpret_cast<uint64_t*>(p);
  for (size_t i = 1; i < kWords; ++i) w[i] = Word(page, version, i);
  w[0] = version;
}

// The version the page holds whole, or ~0 if it is torn or wrong.
inline uint64_t VersionOf(const uint8_t* p, uint64_t page) {
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t v = w[0];
  for (size_t i = 1; i < kWords; ++i) {
    if (w[i] != (v == 0 ? 0 : Word(page, v, i))) return ~0ull;
  }
  return v;
}

struct Options {
  int threads = 8;
  uint64_t shared = 64;  // pages [0, shared) are written once and read by all
  uint64_t pages = 2048 + 64;
  int ops = 3000;
  uint32_t seed = 1;
};

// Thread t owns the pages shared + i * threads + t and knows their versions.
// Returns the first failure seen, or "".
inline std::string Run(uint8_t* base, const Options& o) {
  auto page_at = [&](uint64_t p) { return base + p * kPage; };
  for (uint64_t p = 0; p < o.shared; ++p) Fill(page_at(p), p, 1);
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first;
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(o.seed * 100 + t);
      auto fail = [&](const char* what, uint64_t p, uint64_t want, uint64_t got) {
        if (failures.fetch_add(1) == 0) {
          std::lock_guard lk(mu);
          first = std::string(what) + ": page " + std::to_string(p) + " want " + std::to_string(want) + " got " +
                  std::to_string(got);
        }
      };
      std::vector<uint64_t> version((o.pages - o.shared) / o.threads, 0);
      auto own = [&](uint64_t i) { return o.shared + i * o.threads + t; };
      for (int op = 0; op < o.ops && failures.load() == 0; ++op) {
        uint64_t i = rng() % version.size();
        switch (rng() % 10) {
          case 0: case 1: case 2: case 3:
            Fill(page_at(own(i)), own(i), ++version[i]);
            break;
          case 4:
            madvise(page_at(own(i)), kPage, MADV_DONTNEED);
            version[i] = 0;
            break;
          case 5: case 6: {
            uint64_t p = rng() % o.shared;
            if (uint64_t v = VersionOf(page_at(p), p); v != 1) fail("shared", p, 1, v);
            break;
          }
          default:
            if (uint64_t v = VersionOf(page_at(own(i)), own(i)); v != version[i]) fail("own", own(i), version[i], v);
        }
      }
      for (uint64_t j = 0; j < version.size(); ++j) {
        if (uint64_t v = VersionOf(page_at(own(j)), own(j)); v != version[j]) fail("final", own(j), version[j], v);
      }
    });
  }
  for (auto& t : threads) t.join();
  return first;
}

}  // namespace tessera::vnode::stress
