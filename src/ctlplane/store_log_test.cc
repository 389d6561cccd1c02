// The embedded store on a log: what a restart keeps (every key without a
// lease, its revisions, the store's revision) and what it drops (leases and
// their keys, a torn last record).
#include "ctlplane/store_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "ctlplane/embedded_store.h"

namespace tessera::ctlplane {
namespace {

class StoreLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tessera-ctlplane-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/store.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // As a Store: Put's lease argument defaults there.
  std::unique_ptr<Store> Open() {
    auto s = EmbeddedStore::Open({.path = path_});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::unique_ptr<Store>(std::move(*s)) : nullptr;
  }
  static KeyValue Only(Store& s, const std::string& key) {
    Result<RangeResult> r = s.Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r.ok() ? r->kvs.size() : 0, 1u) << key;
    return r.ok() && r->kvs.size() == 1 ? r->kvs[0] : KeyValue{};
  }

  std::string dir_, path_;
};

TEST_F(StoreLogTest, AReopenedStoreHasEveryKeyAndRevisionButNoLease) {
  KeyValue a, b;
  Revision last = 0;
  LeaseId lease = 0;
  {
    auto s = Open();
    Store& st = *s;
    ASSERT_TRUE(st.Put("a", "1").ok());
    ASSERT_TRUE(st.Put("b", "2").ok());
    ASSERT_TRUE(st.Put("gone", "x").ok());
    auto txn = st.Txn({Compare::ValueIs("a", "1")}, {Op::Put("a", "3"), Op::Delete("gone")}, {});
    ASSERT_TRUE(txn.ok() && txn->succeeded);
    auto granted = st.Grant(60);
    ASSERT_TRUE(granted.ok());
    lease = *granted;
    ASSERT_TRUE(st.Put("leased", "y", lease).ok());
    auto put = st.Put("b", "4");
    ASSERT_TRUE(put.ok());
    last = *put;
    a = Only(st, "a");
    b = Only(st, "b");
  }
  auto s = Open();
  Store& st = *s;
  KeyValue a2 = Only(st, "a"), b2 = Only(st, "b");
  EXPECT_EQ(a2.value, "3");
  EXPECT_EQ(a2.create_revision, a.create_revision);
  EXPECT_EQ(a2.mod_revision, a.mod_revision);
  EXPECT_EQ(b2.value, "4");
  EXPECT_EQ(b2.create_revision, b.create_revision);
  EXPECT_EQ(b2.mod_revision, last);
  auto gone = st.GetPrefix("");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->kvs.size(), 2u) << "'gone' was deleted and 'leased' went with its lease";
  EXPECT_EQ(gone->revision, last);
  EXPECT_FALSE(st.KeepAlive(lease).ok()) << "a lease does not outlive the process";
  auto next = st.Put("c", "5");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, last + 1);
  auto fresh = st.Grant(60);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(*fresh, lease) << "a lease id from before the restart names no new lease";
}

TEST_F(StoreLogTest, ALeaseThatExpiredStillMovedTheRevision) {
  Revision after_expiry = 0;
  {
    auto s = Open();
    Store& st = *s;
    auto lease = st.Grant(1);
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(st.Put("member", "m", *lease).ok());
    ASSERT_TRUE(st.Revoke(*lease).ok());
    auto r = st.Get("member");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->kvs.empty());
    after_expiry = r->revision;
  }
  auto s = Open();
  auto r = s->Get("member");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, after_expiry) << "a watcher resuming after the expiry must not see revisions repeat";
}

TEST_F(StoreLogTest, ATornLastRecordIsDroppedAndTheRestKept) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("a", "1").ok());
    ASSERT_TRUE(s->Put("b", "2").ok());
  }
  const auto whole = std::filesystem::file_size(path_);
  {
    std::ofstream out(path_, std::ios::app | std::ios::binary);
    out.write("\x10\x20\x30\x40\xff\x00\x00\x00partial", 15);  // a header promising 255 bytes, then 7
  }
  {
    auto s = Open();
    EXPECT_EQ(Only(*s, "a").value, "1");
    EXPECT_EQ(Only(*s, "b").value, "2");
    EXPECT_EQ(std::filesystem::file_size(path_), whole) << "the torn bytes are cut off";
    ASSERT_TRUE(s->Put("c", "3").ok());
  }
  auto s = Open();
  EXPECT_EQ(Only(*s, "c").value, "3") << "a record after the cut replays";
}

TEST_F(StoreLogTest, ALongLogIsCompactedAndReplaysTheSame) {
  const std::string value(200, 'v');
  Revision last = 0;
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("keep", "k").ok());
    for (int i = 0; i < 2000; ++i) {
      auto r = s->Put("hot", value + std::to_string(i));
      ASSERT_TRUE(r.ok());
      last = *r;
    }
    EXPECT_LT(std::filesystem::file_size(path_), 2000u * 200 / 4) << "rewritten as it grew";
  }
  auto s = Open();
  EXPECT_EQ(Only(*s, "hot").value, value + "1999");
  EXPECT_EQ(Only(*s, "hot").mod_revision, last);
  EXPECT_EQ(Only(*s, "keep").value, "k");
  auto r = s->Get("keep");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, last);
}

TEST_F(StoreLogTest, AnUnusablePathIsAClearError) {
  auto s = EmbeddedStore::Open({.path = dir_ + "/no/such/dir/store.log"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("no/such/dir"), std::string::npos) << s.status().ToString();
}

}  // namespace
}  // namespace tessera::ctlplane
