// The maps the controller hands to clients, and region health in `status`: a
// fragment is lost only once its node was declared dead. A node that is
// merely silent — killed a moment ago, or heard late because the controller's
// thread was busy — stays ready (a client leaves shares a map calls lost out
// of its writes, so a live node shown lost would miss them for good).
#include <gtest/gtest.h>

#include "common/clock.h"
#include "controller/context.h"
#include "controller/handlers.h"
#include "ctlplane/embedded_store.h"

namespace tessera::controller {
namespace {

using FragmentState = proto::c2ctl::FragmentState;

class QueriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ctlplane::EmbeddedStore::Open({.expiry_thread = false});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ctx_ = std::make_unique<Context>(Options{.node_timeout_ms = 600}, std::move(*store), nullptr);
    const uint64_t now = NowNanos();
    for (uint64_t id = 1; id <= 6; ++id) {
      ctx_->state.nodes()[id] = {.id = id, .addr = "127.0.0.1:" + std::to_string(9000 + id), .capacity = 1 << 20,
                                 .last_heartbeat_ns = now, .registered_ns = now};
    }
    region_ = {.id = 7, .name = "r", .state = RegionState::kReady, .page_size = 4096, .num_pages = 16,
               .pages_per_stripe = 16, .redundancy = {.k = 4, .m = 2}, .fragment_nodes = {1, 2, 3, 4, 5, 6},
               .fragment_states = std::vector<FragmentState>(6, FragmentState::kReady)};
  }

  std::unique_ptr<Context> ctx_;
  RegionRecord region_;
};

TEST_F(QueriesTest, ASilentNodeStaysReadyInMapsUntilDeclaredDead) {
  // Node 2 has not been heard for 10 s: killed, or its heartbeats wait unread.
  ctx_->state.nodes()[2].last_heartbeat_ns = NowNanos() - 10'000'000'000;
  proto::c2ctl::RegionInfo map = RegionInfoOf(*ctx_, region_);
  ASSERT_EQ(map.fragment_states.size(), 6u);
  for (FragmentState s : map.fragment_states) EXPECT_EQ(s, FragmentState::kReady);
  EXPECT_EQ(FragmentOf(*ctx_, region_, 1), FragmentState::kReady) << "status agrees with the map";

  ctx_->declared_dead.emplace(2, NowNanos());
  map = RegionInfoOf(*ctx_, region_);
  EXPECT_EQ(map.fragment_states[1], FragmentState::kLost) << "declared dead, even before the map records it";
  EXPECT_EQ(map.fragment_states[0], FragmentState::kReady);
  EXPECT_EQ(FragmentOf(*ctx_, region_, 1), FragmentState::kLost);
}

TEST_F(QueriesTest, MapsCarryTheRecordedStates) {
  region_.fragment_states[3] = FragmentState::kRebuilding;
  region_.fragment_states[4] = FragmentState::kLost;
  proto::c2ctl::RegionInfo map = RegionInfoOf(*ctx_, region_);
  EXPECT_EQ(map.fragment_states[3], FragmentState::kRebuilding);
  EXPECT_EQ(map.fragment_states[4], FragmentState::kLost);
  EXPECT_EQ(map.fragment_states[5], FragmentState::kReady);
  ASSERT_EQ(map.nodes.size(), 6u);
  EXPECT_EQ(map.nodes[map.fragment_nodes[5]].addr, "127.0.0.1:9006");
}

}  // namespace
}  // namespace tessera::controller
