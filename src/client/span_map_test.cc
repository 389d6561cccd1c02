#include "client/span_map.h"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace tessera::client {
namespace {

// Packs `pages` and lands every row at `version`; returns the rows.
std::vector<SpanMap::RowWrite> Write(SpanMap& m, std::vector<uint64_t> pages, uint64_t version) {
  auto w = m.Pack(pages);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return {};
  for (const auto& row : *w) m.Landed(row, version);
  return *w;
}

TEST(SpanMapTest, PagesAreUnwrittenUntilTheirRowLands) {
  SpanMap m(16, 8, 4);
  EXPECT_FALSE(m.Find(3).has_value());
  auto w = m.Pack(std::vector<uint64_t>{3, 9});
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->size(), 1u);
  EXPECT_EQ(w->at(0).pages, (std::vector<uint64_t>{3, 9, SpanMap::kNoPage, SpanMap::kNoPage})) << "padded";
  EXPECT_FALSE(m.Find(3).has_value()) << "not before it lands";
  m.Landed(w->at(0), 77);
  auto at = m.Find(9);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->row, w->at(0).row);
  EXPECT_EQ(at->column, 1);
  EXPECT_EQ(at->version, 77u);
  EXPECT_EQ(m.live(w->at(0).row), 2);
}

TEST(SpanMapTest, ABatchFillsRowsKAtATime) {
  SpanMap m(64, 16, 4);
  auto w = m.Pack(std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->size(), 3u);
  EXPECT_EQ(m.free_rows(), 13u);
  for (const auto& row : *w) m.Landed(row, 5);
  for (uint64_t p = 0; p < 10; ++p) {
    auto at = m.Find(p);
    ASSERT_TRUE(at.has_value());
    EXPECT_EQ(at->row, w->at(p / 4).row);
    EXPECT_EQ(at->column, static_cast<int>(p % 4));
  }
}

TEST(SpanMapTest, ARowWhosePagesAllMovedIsFreeAgain) {
  SpanMap m(16, 4, 2);
  auto first = Write(m, {0, 1}, 1);
  EXPECT_EQ(m.free_rows(), 3u);
  Write(m, {0}, 2);
  EXPECT_EQ(m.live(first[0].row), 1);
  EXPECT_EQ(m.free_rows(), 2u);
  Write(m, {1}, 3);
  EXPECT_EQ(m.live(first[0].row), 0);
  EXPECT_EQ(m.free_rows(), 2u) << "the first row came back, the last write took one";
}

TEST(SpanMapTest, TheLaterPackWinsWhicheverLandsLast) {
  SpanMap m(8, 8, 2);
  auto older = m.Pack(std::vector<uint64_t>{5});
  auto newer = m.Pack(std::vector<uint64_t>{5});
  ASSERT_TRUE(older.ok() && newer.ok());
  m.Landed(newer->at(0), 20);
  m.Landed(older->at(0), 10);
  auto at = m.Find(5);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->row, newer->at(0).row);
  EXPECT_EQ(at->version, 20u);
  EXPECT_EQ(m.live(older->at(0).row), 0);
  EXPECT_EQ(m.free_rows(), 7u) << "the older row carried nothing current: free at once";
}

TEST(SpanMapTest, AZeroedPageStaysZeroWhenAnEarlierPackLands) {
  SpanMap m(8, 8, 2);
  Write(m, {2}, 1);
  auto pending = m.Pack(std::vector<uint64_t>{2});
  ASSERT_TRUE(pending.ok());
  m.Zero(2);
  EXPECT_FALSE(m.Find(2).has_value());
  m.Landed(pending->at(0), 9);
  EXPECT_FALSE(m.Find(2).has_value());
  EXPECT_EQ(m.free_rows(), 8u) << "both rows hold nothing";
}

TEST(SpanMapTest, AFailedRowIsFreeAndThePageStaysWhereItWas) {
  SpanMap m(8, 4, 2);
  auto first = Write(m, {1}, 4);
  auto again = m.Pack(std::vector<uint64_t>{1});
  ASSERT_TRUE(again.ok());
  m.Failed(again->at(0));
  auto at = m.Find(1);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->row, first[0].row);
  EXPECT_EQ(at->version, 4u);
  EXPECT_EQ(m.free_rows(), 3u);
  EXPECT_EQ(m.LivePages(first[0].row), (std::vector<uint64_t>{1})) << "no write in flight any more";
}

TEST(SpanMapTest, TooFewFreeRowsIsAnErrorThatChangesNothing) {
  SpanMap m(16, 2, 2);
  auto w = m.Pack(std::vector<uint64_t>{0, 1, 2, 3, 4});
  EXPECT_EQ(w.status().code(), Code::kOutOfCapacity);
  EXPECT_EQ(m.free_rows(), 2u);
  EXPECT_EQ(m.Pack(std::vector<uint64_t>{0, 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(m.Pack(std::vector<uint64_t>{16}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(m.free_rows(), 2u);
}

TEST(SpanMapTest, CompactionTakesTheEmptiestRowAndSkipsPagesBeingWritten) {
  SpanMap m(32, 8, 4);
  auto a = Write(m, {0, 1, 2, 3}, 1);
  auto b = Write(m, {4, 5, 6, 7}, 2);
  Write(m, {0, 1, 2, 4}, 3);  // row a keeps page 3 alone, row b keeps 5, 6, 7
  EXPECT_EQ(m.CompactionCandidates(3, 8), (std::vector<uint64_t>{a[0].row, b[0].row})) << "fewest live first";
  auto candidates = m.CompactionCandidates(2, 8);
  ASSERT_EQ(candidates.size(), 1u);
  auto row = std::optional<uint64_t>(candidates[0]);
  EXPECT_EQ(m.LivePages(*row), (std::vector<uint64_t>{3}));
  EXPECT_TRUE(m.CompactionCandidates(0, 8).empty());
  auto busy = m.Pack(std::vector<uint64_t>{6});
  ASSERT_TRUE(busy.ok());
  EXPECT_EQ(m.LivePages(b[0].row), (std::vector<uint64_t>{5, 7})) << "page 6 has a write in flight";
  // Packing the live pages anew frees the row.
  auto moved = Write(m, m.LivePages(*row), 4);
  EXPECT_EQ(m.live(*row), 0);
  EXPECT_EQ(m.Find(3)->row, moved[0].row);
}

TEST(SpanMapTest, ASnapshotKeepsWhatLandedAndFreesRowsInFlight) {
  SpanMap m(16, 8, 4);
  Write(m, {0, 1}, 3);
  auto pending = m.Pack(std::vector<uint64_t>{1, 2});
  ASSERT_TRUE(pending.ok());
  SpanMap copy = m.Snapshot();
  EXPECT_EQ(copy.Find(1)->version, 3u);
  EXPECT_FALSE(copy.Find(2).has_value());
  EXPECT_EQ(copy.free_rows(), 7u) << "the row being written is free in the copy";
  EXPECT_EQ(copy.LivePages(m.Find(0)->row), (std::vector<uint64_t>{0, 1})) << "no write in flight in the copy";
  m.Landed(pending->at(0), 4);
  EXPECT_EQ(copy.Find(1)->version, 3u) << "the copy is its own";
}

// Random packs, zeros, failures and landings in random order, against a
// model: a page reads as the landed pack or zeroing with the highest order
// (pack order), and rows are free, being written, or holding live pages.
TEST(SpanMapTest, RandomHistoriesAgreeWithAModel) {
  constexpr uint64_t kPages = 64, kRows = 48;
  SpanMap m(kPages, kRows, 4);
  std::mt19937_64 rng(7);
  struct Pending {
    SpanMap::RowWrite w;
    uint64_t version;
  };
  std::vector<Pending> pending;
  std::vector<uint64_t> best_seq(kPages, 0), best_version(kPages, 0);  // version 0: zeros
  uint64_t seq = 0, version = 0;
  for (int step = 0; step < 20000; ++step) {
    const int what = static_cast<int>(rng() % 10);
    if (what < 4) {
      std::vector<uint64_t> batch;
      for (int i = 0; i < 1 + static_cast<int>(rng() % 9); ++i) {
        uint64_t p = rng() % kPages;
        if (std::find(batch.begin(), batch.end(), p) == batch.end()) batch.push_back(p);
      }
      auto w = m.Pack(batch);
      if (!w.ok()) {
        ASSERT_EQ(w.status().code(), Code::kOutOfCapacity);
        continue;
      }
      ++seq;
      for (auto& row : *w) {
        ASSERT_EQ(row.seq, seq);
        pending.push_back({row, ++version});
      }
    } else if (what < 8 && !pending.empty()) {
      const size_t i = rng() % pending.size();
      const Pending done = pending[i];
      pending.erase(pending.begin() + static_cast<long>(i));
      if (rng() % 8 == 0) {
        m.Failed(done.w);
        continue;
      }
      m.Landed(done.w, done.version);
      for (uint64_t p : done.w.pages) {
        if (p != SpanMap::kNoPage && done.w.seq > best_seq[p]) {
          best_seq[p] = done.w.seq;
          best_version[p] = done.version;
        }
      }
    } else if (what == 8) {
      const uint64_t p = rng() % kPages;
      m.Zero(p);
      best_seq[p] = ++seq;
      best_version[p] = 0;
    } else {
      for (uint64_t row : m.CompactionCandidates(2, 4)) {
        ASSERT_LE(m.live(row), 2);
        for (uint64_t p : m.LivePages(row)) ASSERT_EQ(m.Find(p)->row, row);
      }
    }
    uint64_t mapped = 0;
    for (uint64_t p = 0; p < kPages; ++p) {
      auto at = m.Find(p);
      ASSERT_EQ(at.has_value(), best_version[p] != 0) << "page " << p << " at step " << step;
      if (at) {
        ASSERT_EQ(at->version, best_version[p]) << "page " << p << " at step " << step;
      }
      mapped += at.has_value();
    }
    uint64_t live = 0, holding = 0;
    for (uint64_t r = 0; r < kRows; ++r) {
      live += static_cast<uint64_t>(m.live(r));
      holding += m.live(r) > 0;
    }
    ASSERT_EQ(live, mapped) << "at step " << step;
    ASSERT_EQ(m.free_rows(), kRows - pending.size() - holding) << "at step " << step;
  }
}

}  // namespace
}  // namespace tessera::client
