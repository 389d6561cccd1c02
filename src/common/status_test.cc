#include "common/status.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "common/result.h"

namespace tessera {
namespace {

TEST(StatusTest, OkAndErrorsPrint) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  Status s = NotFound("region 'x'");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "not found: region 'x'");
  EXPECT_EQ(s.With("open").ToString(), "not found: open: region 'x'");
}

TEST(StatusTest, ErrnoMapsToCodes) {
  EXPECT_EQ(Status::FromErrno(ECONNREFUSED, "connect").code(), Code::kUnavailable);
  EXPECT_EQ(Status::FromErrno(ENOMEM, "mmap").code(), Code::kOutOfCapacity);
  EXPECT_EQ(Status::FromErrno(EBADF, "read").code(), Code::kIoError);
  EXPECT_NE(Status::FromErrno(ECONNREFUSED, "connect 1.2.3.4").message().find("connect 1.2.3.4"),
            std::string::npos);
}

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  TS_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(ResultTest, PropagatesValuesAndErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), Code::kInvalidArgument);
}

TEST(ResultDeathTest, ValueOfErrorIsABug) {
  Result<int> r = InvalidArgument("x");
  EXPECT_DEATH((void)r.value(), "CHECK failed");
}

}  // namespace
}  // namespace tessera
