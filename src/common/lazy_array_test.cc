#include "common/lazy_array.h"

#include <unistd.h>

#include <cstdint>
#include <fstream>

#include <gtest/gtest.h>

namespace tessera {
namespace {

// Resident bytes of this process (/proc/self/statm).
uint64_t Rss() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}
// How much the resident size grew since `before` (0 if it shrank).
uint64_t Grown(uint64_t before) {
  const uint64_t now = Rss();
  return now > before ? now - before : 0;
}

struct Entry {
  uint32_t a;
  uint16_t b;
  uint64_t c;
};

TEST(LazyArrayTest, StartsZeroAndCostsOnlyWhatIsWritten) {
  const uint64_t before = Rss();
  LazyArray<Entry> t(16u << 20);  // 256 MiB of address space
  EXPECT_EQ(t.size(), 16u << 20);
  EXPECT_EQ(t[12345].a, 0u);
  EXPECT_EQ(t[(16u << 20) - 1].c, 0u);
  t[7].a = 1;
  t[9'000'000].c = 2;
  EXPECT_LT(Grown(before), 4u << 20) << "two entries written, a few pages resident";
}

TEST(LazyArrayTest, ACopyHasTheValuesAndStaysSparse) {
  LazyArray<Entry> t(16u << 20);
  t[3] = {1, 2, 3};
  t[10'000'000] = {4, 5, 6};
  const uint64_t before = Rss();
  LazyArray<Entry> c = t.Copy();
  EXPECT_LT(Grown(before), 4u << 20);
  EXPECT_EQ(c[3].c, 3u);
  EXPECT_EQ(c[10'000'000].a, 4u);
  c[3].c = 9;
  EXPECT_EQ(t[3].c, 3u) << "the copy is its own";
  LazyArray<Entry> moved = std::move(c);
  EXPECT_EQ(moved[3].c, 9u);
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
}  // namespace tessera
