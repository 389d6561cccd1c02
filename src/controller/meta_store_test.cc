#include "controller/meta_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

namespace tessera::controller {
namespace {

class MetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tessera-meta-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/meta.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<MetaStore> Open() {
    auto s = OpenFileMetaStore(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string dir_, path_;
};

TEST_F(MetaStoreTest, SurvivesReopen) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("region/a", "1").ok());
    ASSERT_TRUE(s->Put("region/b", "2").ok());
    ASSERT_TRUE(s->Put("node/1", "x").ok());
    ASSERT_TRUE(s->Put("region/a", "3").ok());
    ASSERT_TRUE(s->Delete("region/b").ok());
  }
  auto s = Open();
  auto regions = s->List("region/");
  ASSERT_TRUE(regions.ok());
  EXPECT_EQ(*regions, (std::map<std::string, std::string>{{"region/a", "3"}}));
  EXPECT_EQ(s->List("node/")->size(), 1u);
}

TEST_F(MetaStoreTest, ATornTailIsDroppedNotFatal) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Put("k1", "v1").ok());
    ASSERT_TRUE(s->Put("k2", std::string(100, 'x')).ok());
  }
  // Cut the last record in half, as a crash mid-write would.
  auto size = std::filesystem::file_size(path_);
  std::filesystem::resize_file(path_, size - 50);
  auto s = Open();
  auto all = s->List("");
  EXPECT_EQ(*all, (std::map<std::string, std::string>{{"k1", "v1"}}));
  ASSERT_TRUE(s->Put("k3", "v3").ok()) << "appends after the cut";
  s.reset();
  EXPECT_EQ(Open()->List("")->size(), 2u);
}

TEST_F(MetaStoreTest, CompactsARewrittenLog) {
  {
    auto s = Open();
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(s->Put("hot", std::to_string(i)).ok());
  }
  auto before = std::filesystem::file_size(path_);
  auto s = Open();
  EXPECT_LT(std::filesystem::file_size(path_), before / 10);
  EXPECT_EQ(s->List("hot")->at("hot"), "499");
  ASSERT_TRUE(s->Put("after", "compaction").ok());
  s.reset();
  EXPECT_EQ(Open()->List("")->size(), 2u);
}

}  // namespace
}  // namespace tessera::controller
