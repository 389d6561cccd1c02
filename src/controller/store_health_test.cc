// StoreHealth and the ClusterState around it: a store that takes no writes is
// reported once a minute, probed, and forgotten when it takes writes again;
// a store's cluster id is made once and kept.
#include "controller/store_health.h"

#include <gtest/gtest.h>

#include "controller/cluster_state.h"
#include "ctlplane/embedded_store.h"

namespace tessera::controller {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

TEST(StoreHealthTest, ReportsTheFirstFailureThenOnceAMinuteAndTheRecoveryOnce) {
  uint64_t now = 5 * kSecond;
  StoreHealth h({.now_ns = [&] { return now; }});
  EXPECT_FALSE(h.failing());
  EXPECT_FALSE(h.Succeeded()) << "nothing to recover from";
  const Status full(Code::kIoError, "write x: No space left on device");
  EXPECT_TRUE(h.Failed(full));
  int logged = 0;
  for (int i = 0; i < 590; ++i) {  // a failed write every 100 ms for 59 s
    now += kSecond / 10;
    logged += h.Failed(full);
  }
  EXPECT_EQ(logged, 0);
  now += kSecond;
  EXPECT_TRUE(h.Failed(full)) << "a minute on";
  EXPECT_TRUE(h.failing());
  EXPECT_FALSE(h.ProbeDue()) << "a write was just tried";
  now += kSecond;
  EXPECT_TRUE(h.ProbeDue());
  EXPECT_TRUE(h.Succeeded());
  EXPECT_FALSE(h.failing());
  EXPECT_FALSE(h.ProbeDue());
  EXPECT_FALSE(h.Failed(full)) << "a new bout within the minute is not reported";
  EXPECT_FALSE(h.Succeeded()) << "nor its end";
  now += 60 * kSecond;
  EXPECT_TRUE(h.Failed(full));
}

// An embedded store whose transactions fail while `full` is set, as a full
// disk makes its log's appends fail.
class FullableStore final : public ctlplane::Store {
 public:
  bool full = false;
  Result<ctlplane::Revision> Put(const std::string& k, const std::string& v, ctlplane::LeaseId l) override {
    if (full) return Full();
    return inner_.Put(k, v, l);
  }
  Result<ctlplane::Revision> Delete(const std::string& k) override {
    if (full) return Full();
    return inner_.Delete(k);
  }
  Result<ctlplane::RangeResult> Get(const std::string& k) override { return inner_.Get(k); }
  Result<ctlplane::RangeResult> GetPrefix(const std::string& p) override { return inner_.GetPrefix(p); }
  Result<ctlplane::TxnResult> Txn(const std::vector<ctlplane::Compare>& c, const std::vector<ctlplane::Op>& s,
                                  const std::vector<ctlplane::Op>& f) override {
    if (full) return Full();
    return inner_.Txn(c, s, f);
  }
  Result<ctlplane::LeaseId> Grant(int64_t ttl) override { return inner_.Grant(ttl); }
  Status KeepAlive(ctlplane::LeaseId l) override { return inner_.KeepAlive(l); }
  Status Revoke(ctlplane::LeaseId l) override { return inner_.Revoke(l); }
  Result<std::unique_ptr<ctlplane::Watch>> WatchPrefix(const std::string& p, ctlplane::Revision r,
                                                       std::function<void(ctlplane::WatchBatch)> cb) override {
    return inner_.WatchPrefix(p, r, std::move(cb));
  }

 private:
  static Status Full() { return Status(Code::kIoError, "write ctlplane.log: No space left on device"); }
  ctlplane::EmbeddedStore inner_;
};

TEST(ClusterStateTest, AStoreThatTakesNoWritesIsProbedUntilItDoes) {
  uint64_t now = kSecond;
  FullableStore store;
  ClusterState state(&store, "t/", {.now_ns = [&] { return now; }});
  ASSERT_TRUE(state.Load(now).ok());
  store.full = true;
  NodeRecord n{.id = 1, .addr = "127.0.0.1:1"};
  Status s = state.PutNode(n);
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_TRUE(state.store_failing());
  EXPECT_EQ(state.nodes().count(1), 0u) << "what was not recorded is not held either";
  now += 2 * kSecond;
  state.ProbeIfDue();
  EXPECT_TRUE(state.store_failing());
  store.full = false;
  state.ProbeIfDue();
  EXPECT_TRUE(state.store_failing()) << "probed a moment ago";
  now += 2 * kSecond;
  state.ProbeIfDue();
  EXPECT_FALSE(state.store_failing()) << "space came back: no restart needed";
  EXPECT_TRUE(state.PutNode(n).ok());
}

TEST(ClusterStateTest, ANewStoreGetsAClusterIdOnceAndRegionIdsFromARandomPoint) {
  ctlplane::EmbeddedStore store;
  ClusterState a(&store, "t/");
  ASSERT_TRUE(a.Load(0).ok());
  const uint64_t id = a.cluster_id();
  EXPECT_NE(id, 0u);
  auto first = a.NewRegionId();
  ASSERT_TRUE(first.ok());
  ClusterState b(&store, "t/");
  ASSERT_TRUE(b.Load(0).ok());
  EXPECT_EQ(b.cluster_id(), id) << "kept in the store";
  EXPECT_EQ(*b.NewRegionId(), *first + 1);
  ctlplane::EmbeddedStore other;
  ClusterState c(&other, "t/");
  ASSERT_TRUE(c.Load(0).ok());
  EXPECT_NE(c.cluster_id(), id);
  EXPECT_NE(*c.NewRegionId(), *first) << "another cluster's regions are numbered elsewhere";
}

TEST(ClusterStateTest, AStoreFromBeforeClusterIdsKeepsItsRegionIds) {
  ctlplane::EmbeddedStore store;
  ASSERT_TRUE(store.Put("t/meta/next_region_id", "5", 0).ok());
  ClusterState s(&store, "t/");
  ASSERT_TRUE(s.Load(0).ok());
  EXPECT_NE(s.cluster_id(), 0u);
  EXPECT_EQ(*s.NewRegionId(), 5u);
}

}  // namespace
}  // namespace tessera::controller
