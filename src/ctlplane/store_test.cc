// The Store contract (store.h) and the election built on it (election.h),
// one set of cases run on both back ends: the
// embedded store with a clock the test moves, and a real etcd (Debian's
// etcd-server) started for each case on free loopback ports, where time is
// real. Then what only one back end has.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "ctlplane/election.h"
#include "ctlplane/embedded_store.h"
#include "ctlplane/etcd_cluster.h"
#include "ctlplane/etcd_store.h"

namespace tessera::ctlplane {
namespace {

// Collects a watch's batches; Wait blocks until `n` events (an error counts
// as one) have come, or a generous cap passes, which the caller's EXPECTs
// then report.
class Collector {
 public:
  std::function<void(WatchBatch)> Callback() {
    return [this](WatchBatch b) {
      std::lock_guard lk(mu_);
      batches_.push_back(std::move(b));
      cv_.notify_all();
    };
  }
  std::vector<WatchEvent> Wait(size_t n) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(30), [&] { return CountLocked() >= n; });
    std::vector<WatchEvent> all;
    for (const WatchBatch& b : batches_) all.insert(all.end(), b.events.begin(), b.events.end());
    return all;
  }
  WatchBatch Last() {
    std::lock_guard lk(mu_);
    return batches_.back();
  }
  size_t batches() {
    std::lock_guard lk(mu_);
    return batches_.size();
  }

 private:
  size_t CountLocked() const {
    size_t n = 0;
    for (const WatchBatch& b : batches_) n += b.events.size() + (b.error.ok() ? 0 : 1);
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchBatch> batches_;
};

// A back end under test, and how time passes for it.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Store& store() = 0;
  virtual void Advance(int64_t ms) = 0;
};

class EmbeddedBackend final : public Backend {
 public:
  Store& store() override { return store_; }
  void Advance(int64_t ms) override {
    now_ms_ += ms;
    store_.ExpireDue();
  }

 private:
  std::atomic<int64_t> now_ms_{1'000'000};
  EmbeddedStore store_{EmbeddedStore::Options{.now_ms = [this] { return now_ms_.load(); }, .expiry_thread = false}};
};

class EtcdBackend final : public Backend {
 public:
  EtcdBackend() {
    char tmpl[] = "/tmp/tessera-etcd-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto cluster = EtcdCluster::Start({.dir = dir_});
    EXPECT_TRUE(cluster.ok()) << cluster.status().ToString();
    if (!cluster.ok()) return;
    cluster_ = std::move(*cluster);
    auto store = EtcdStore::Open({.endpoints = cluster_->endpoints()});
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) store_ = std::move(*store);
  }
  ~EtcdBackend() override {
    store_.reset();
    cluster_.reset();
    std::filesystem::remove_all(dir_);
  }
  bool ready() const { return store_ != nullptr; }
  Store& store() override { return *store_; }
  void Advance(int64_t ms) override { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

 private:
  std::string dir_;
  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<Store> store_;
};

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "etcd") {
      auto etcd = std::make_unique<EtcdBackend>();
      ASSERT_TRUE(etcd->ready());
      backend_ = std::move(etcd);
    } else {
      backend_ = std::make_unique<EmbeddedBackend>();
    }
    base_ = s().Get("/")->revision;
  }
  Store& s() { return backend_->store(); }
  // Until no key starts with `prefix`: etcd revokes an expired lease within
  // about half a second of its deadline, the embedded store at once.
  bool WaitGone(const std::string& prefix) {
    for (int i = 0; i < 300; ++i) {
      if (s().GetPrefix(prefix)->kvs.empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  std::unique_ptr<Backend> backend_;
  Revision base_ = 0;  // the store's revision when the case began
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("embedded", "etcd"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreTest, EveryChangeTakesTheNextRevision) {
  Result<Revision> r1 = s().Put("/a/1", "x");
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(*r1, base_ + 1);
  ASSERT_TRUE(s().Put("/a/2", "y").ok());
  Result<Revision> r3 = s().Put("/a/1", "z");
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(*r3, base_ + 3);
  Result<RangeResult> g = s().Get("/a/1");
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->kvs.size(), 1u);
  EXPECT_EQ(g->kvs[0].value, "z");
  EXPECT_EQ(g->kvs[0].create_revision, base_ + 1);
  EXPECT_EQ(g->kvs[0].mod_revision, base_ + 3);
  EXPECT_EQ(g->revision, base_ + 3);
  ASSERT_TRUE(s().Put("/b", "other").ok());
  Result<RangeResult> p = s().GetPrefix("/a/");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->kvs.size(), 2u);
  EXPECT_EQ(p->kvs[0].key, "/a/1");
  EXPECT_EQ(p->kvs[1].key, "/a/2");
  // Deleting an absent key changes nothing, revision included.
  Result<Revision> d = s().Delete("/nothing");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, base_ + 4);
  EXPECT_TRUE(s().Get("/nothing")->kvs.empty());
  EXPECT_FALSE(s().Put("", "v").ok());
}

TEST_P(StoreTest, TransactionsCompareThenApplyOneSide) {
  auto create = [&](const std::string& v) {
    return s().Txn({Compare::Absent("/leader")}, {Op::Put("/leader", v)}, {Op::Put("/lost", v)});
  };
  Result<TxnResult> first = create("a");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  Result<TxnResult> second = create("b");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->succeeded);
  EXPECT_EQ(s().Get("/leader")->kvs[0].value, "a");
  EXPECT_EQ(s().Get("/lost")->kvs[0].value, "b");
  // Compare-and-swap on the revision a reader saw.
  const Revision seen = s().Get("/leader")->kvs[0].mod_revision;
  ASSERT_TRUE(s().Put("/leader", "c").ok());
  Result<TxnResult> stale = s().Txn({Compare::ModRevisionIs("/leader", seen)}, {Op::Put("/leader", "d")}, {});
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ(s().Get("/leader")->kvs[0].value, "c");
  Result<TxnResult> by_value =
      s().Txn({Compare::ValueIs("/leader", "c")}, {Op::Put("/leader", "e"), Op::Delete("/lost")}, {});
  ASSERT_TRUE(by_value.ok());
  EXPECT_TRUE(by_value->succeeded);
  EXPECT_EQ(s().Get("/leader")->kvs[0].mod_revision, by_value->revision);
  EXPECT_TRUE(s().Get("/lost")->kvs.empty());
}

TEST_P(StoreTest, AnExpiredLeaseTakesItsKeysWithIt) {
  Result<LeaseId> lease = s().Grant(3);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(s().Put("/nodes/1", "addr", *lease).ok());
  ASSERT_TRUE(s().Put("/nodes/2", "addr", *lease).ok());
  ASSERT_TRUE(s().Put("/kept", "v").ok());
  Collector seen;
  auto watch = s().WatchPrefix("/nodes/", 0, seen.Callback());
  ASSERT_TRUE(watch.ok());
  backend_->Advance(2000);
  ASSERT_TRUE(s().KeepAlive(*lease).ok());
  backend_->Advance(2000);  // 4 s after the grant, 2 s after the renewal: alive
  EXPECT_EQ(s().GetPrefix("/nodes/")->kvs.size(), 2u);
  backend_->Advance(1500);
  EXPECT_TRUE(WaitGone("/nodes/"));
  EXPECT_EQ(s().Get("/kept")->kvs.size(), 1u);
  std::vector<WatchEvent> events = seen.Wait(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision) << "a lease's keys go at one revision";
  EXPECT_EQ(seen.batches(), 1u);
  EXPECT_EQ(s().KeepAlive(*lease).code(), Code::kNotFound);
  EXPECT_EQ(s().Put("/nodes/3", "addr", *lease).status().code(), Code::kNotFound);
  EXPECT_FALSE(s().Grant(0).ok());
}

TEST_P(StoreTest, RevokeDeletesAtOnce) {
  Result<LeaseId> lease = s().Grant(60);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(s().Put("/k", "v", *lease).ok());
  // A key moved to no lease stays when the lease goes.
  ASSERT_TRUE(s().Put("/moved", "v", *lease).ok());
  ASSERT_TRUE(s().Put("/moved", "v2").ok());
  ASSERT_TRUE(s().Revoke(*lease).ok());
  EXPECT_TRUE(s().Get("/k")->kvs.empty());
  EXPECT_EQ(s().Get("/moved")->kvs.size(), 1u);
  EXPECT_TRUE(s().Revoke(*lease).ok());
}

TEST_P(StoreTest, AWatchFromAPastRevisionReplaysThenFollows) {
  const Revision from = *s().Put("/map/r1", "epoch1");
  ASSERT_TRUE(s().Put("/elsewhere", "x").ok());
  ASSERT_TRUE(s().Put("/map/r2", "epoch1").ok());
  Collector seen;
  auto watch = s().WatchPrefix("/map/", from, seen.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(s().Txn({}, {Op::Put("/map/r1", "epoch2"), Op::Delete("/map/r2")}, {}).ok());
  std::vector<WatchEvent> events = seen.Wait(4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kv.key, "/map/r1");
  EXPECT_EQ(events[0].kv.mod_revision, from);
  EXPECT_EQ(events[1].kv.key, "/map/r2");
  EXPECT_EQ(events[2].kv.value, "epoch2");
  EXPECT_EQ(events[3].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(seen.batches(), 3u) << "the transaction's two changes come in one batch";
}

TEST_P(StoreTest, AWatchMayEndItself) {
  // What the callback touches is shared with it: the callback may still be
  // returning when this case ends.
  struct SelfEnding {
    std::mutex mu;
    std::unique_ptr<Watch> watch;
    int calls = 0;
  };
  auto st = std::make_shared<SelfEnding>();
  Result<std::unique_ptr<Watch>> w = s().WatchPrefix("/", 0, [st](WatchBatch) {
    std::lock_guard lk(st->mu);
    ++st->calls;
    st->watch.reset();  // from its own callback
  });
  ASSERT_TRUE(w.ok());
  auto calls = [&] {
    std::lock_guard lk(st->mu);
    return st->calls;
  };
  {
    std::lock_guard lk(st->mu);
    st->watch = std::move(*w);
  }
  ASSERT_TRUE(s().Put("/a", "1").ok());
  for (int i = 0; i < 600 && calls() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(calls(), 1);
  Collector after;  // a second watch proves the store's threads went on
  auto w2 = s().WatchPrefix("/", 0, after.Callback());
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE(s().Put("/b", "2").ok());
  EXPECT_EQ(after.Wait(1).size(), 1u);
  EXPECT_EQ(calls(), 1);
  std::lock_guard lk(st->mu);
  EXPECT_EQ(st->watch, nullptr);
}

// The embedded store keeps a bounded history: a watch from before it ends at
// once with an error, and hears nothing more.
TEST(EmbeddedStoreTest, AWatchFromACompactedRevisionEndsWithAnError) {
  EmbeddedStore small_store(EmbeddedStore::Options{.expiry_thread = false, .history_events = 2});
  Store& small = small_store;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(small.Put("/k", std::to_string(i)).ok());
  Collector refused;
  auto old = small.WatchPrefix("/", 2, refused.Callback());
  ASSERT_TRUE(old.ok());
  refused.Wait(1);
  ASSERT_EQ(refused.batches(), 1u);
  EXPECT_EQ(refused.Last().error.code(), Code::kInvalidArgument);
  ASSERT_TRUE(small.Put("/k", "after").ok());
  Collector recent;
  auto ok = small.WatchPrefix("/", 6, recent.Callback());  // the oldest kept
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(recent.Wait(2).size(), 2u);
  EXPECT_EQ(refused.batches(), 1u) << "an ended watch hears nothing more";
}


// Three etcd members; the one a watch streams from, and calls went to, is
// kill -9ed. Calls go on to the others, and the watch reconnects from the
// revision after its last: every change once, in order.
TEST(EtcdStoreTest, AWatchAndCallsOutliveTheMemberTheyUsed) {
  char tmpl[] = "/tmp/tessera-etcd-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto cluster = EtcdCluster::Start({.dir = dir, .members = 3});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto store = EtcdStore::Open({.endpoints = (*cluster)->endpoints(), .timeout_ms = 2000});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  Collector seen;
  auto watch = s.WatchPrefix("/w/", 0, seen.Callback());
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.Put("/w/" + std::to_string(i), "v", 0).ok()) << i;
  ASSERT_EQ(seen.Wait(10).size(), 10u);
  (*cluster)->Kill(0);
  for (int i = 10; i < 20; ++i) {
    Result<Revision> r = s.Put("/w/" + std::to_string(i), "v", 0);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
  }
  std::vector<WatchEvent> events = seen.Wait(20);
  ASSERT_EQ(events.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(events[static_cast<size_t>(i)].kv.key, "/w/" + std::to_string(i));
  watch->reset();
  store->reset();
  cluster->reset();
  std::filesystem::remove_all(dir);
}

// The oldest candidate leads; when it resigns the next one does, and anyone
// can read who leads.
TEST_P(StoreTest, TheOldestCandidateLeadsThenTheNext) {
  auto a = Election::Join(s(), {.name = "/ctl", .value = "a:1"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE((*a)->WaitLeader(30'000));
  auto b = Election::Join(s(), {.name = "/ctl", .value = "b:2"});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE((*b)->leading());
  Result<std::optional<KeyValue>> leader = Election::Leader(s(), "/ctl");
  ASSERT_TRUE(leader.ok() && leader->has_value());
  EXPECT_EQ((*leader)->value, "a:1");
  ASSERT_TRUE((*a)->Resign().ok());
  EXPECT_FALSE((*a)->leading());
  EXPECT_TRUE((*b)->WaitLeader(30'000));
  EXPECT_EQ((*Election::Leader(s(), "/ctl"))->value, "b:2");
  b->reset();
  EXPECT_FALSE(Election::Leader(s(), "/ctl")->has_value()) << "nobody leads";
}

// A leader whose lease is gone (as when it was killed and its TTL ran out)
// hears so from its renewal, and the next candidate leads.
TEST_P(StoreTest, ALeaderWhoseLeaseIsGoneStepsDownAndTheNextLeads) {
  std::atomic<int> lost{0};
  auto a = Election::Join(s(), {.name = "/ctl", .value = "a:1", .on_lost = [&] { lost.fetch_add(1); }});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE((*a)->WaitLeader(30'000));
  auto b = Election::Join(s(), {.name = "/ctl", .value = "b:2"});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(s().Revoke((*Election::Leader(s(), "/ctl"))->lease).ok());
  EXPECT_TRUE((*b)->WaitLeader(30'000));
  for (int i = 0; i < 600 && lost.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(lost.load(), 1);
  EXPECT_FALSE((*a)->leading());
  EXPECT_FALSE((*a)->WaitLeader(0));
}

}  // namespace
}  // namespace tessera::ctlplane
