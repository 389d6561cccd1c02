#include "net/wait_policy.h"

#include <gtest/gtest.h>

namespace tessera::net {
namespace {

int Idle() { return 1; }
int Crowded() { return 9; }
int Unknown() { return -1; }

TEST(WaitPolicyTest, SpinsWhileThereAreCoresToSpare) {
  WaitPolicy p({.spin_us = 50}, Idle, 2);
  EXPECT_EQ(p.SpinBudgetNanos(), 50'000u);
}

TEST(WaitPolicyTest, StopsSpinningWhenOversubscribed) {
  WaitPolicy p({.spin_us = 50}, Crowded, 2);
  EXPECT_EQ(p.SpinBudgetNanos(), 0u);
  WaitPolicy forced({.spin_us = 50, .spin_under_pressure = true}, Crowded, 2);
  EXPECT_EQ(forced.SpinBudgetNanos(), 50'000u);
}

TEST(WaitPolicyTest, NeverSpinsWhenToldNotTo) {
  WaitPolicy p({.spin_us = 0}, Idle, 2);
  EXPECT_EQ(p.SpinBudgetNanos(), 0u);
}

TEST(WaitPolicyTest, AnUnreadableLoadStillSpins) {
  WaitPolicy p({.spin_us = 10}, Unknown, 2);
  EXPECT_EQ(p.SpinBudgetNanos(), 10'000u);
}

TEST(WaitPolicyTest, ReadsTheRealLoad) { EXPECT_GE(RunnableTasksFromLoadavg(), 1); }

}  // namespace
}  // namespace tessera::net
