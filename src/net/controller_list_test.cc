#include "net/controller_list.h"

#include <gtest/gtest.h>

namespace tessera::net {
namespace {

TEST(ControllerListTest, AsksTheOneThatAnsweredLastThenTheOthersInTurn) {
  auto list = ControllerList::Parse("10.0.0.1:7070,10.0.0.2:7070,10.0.0.3:7070");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->size(), 3u);
  EXPECT_EQ(list->current(), "10.0.0.1:7070");
  list->Next("10.0.0.1:7070");
  EXPECT_EQ(list->current(), "10.0.0.2:7070");
  list->Next("10.0.0.1:7070");  // another thread already moved on from it
  EXPECT_EQ(list->current(), "10.0.0.2:7070");
  list->Next("10.0.0.2:7070");
  list->Next("10.0.0.3:7070");
  EXPECT_EQ(list->current(), "10.0.0.1:7070") << "round again";
}

TEST(ControllerListTest, OneAddressIsAListOfOne) {
  auto list = ControllerList::Parse("127.0.0.1:7070");
  ASSERT_TRUE(list.ok());
  list->Next("127.0.0.1:7070");
  EXPECT_EQ(list->current(), "127.0.0.1:7070");
}

TEST(ControllerListTest, BadListsAreClearErrors) {
  for (const char* bad : {"", ",", "127.0.0.1:7070,", "127.0.0.1", "127.0.0.1:7070,ctl:x"}) {
    auto list = ControllerList::Parse(bad);
    ASSERT_FALSE(list.ok()) << bad;
    EXPECT_EQ(list.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(list.status().message().find("controller list"), std::string::npos) << list.status().ToString();
  }
}

}  // namespace
}  // namespace tessera::net
