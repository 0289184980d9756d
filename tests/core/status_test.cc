#include "common/core/status.h"

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError(absl::StrCat(x, " is odd"));
  return x / 2;
}

absl::Status Check(int x) {
  if (x < 0) return absl::OutOfRangeError("negative");
  return absl::OkStatus();
}

absl::StatusOr<int> Quarter(int x) {
  DS_ASSIGN_OR_RETURN(int half, Half(x));
  int quarter = 0;
  DS_ASSIGN_OR_RETURN(quarter, Half(half));  // into an existing variable
  return quarter;
}

absl::Status CheckBoth(int a, int b) {
  DS_RETURN_IF_ERROR(Check(a));
  DS_RETURN_IF_ERROR(Check(b));
  return absl::OkStatus();
}

TEST(StatusTest, AssignOrReturnPropagatesErrorsAndValues) {
  EXPECT_EQ(*Quarter(12), 3);
  absl::StatusOr<int> odd = Quarter(6);  // 6 -> 3, then 3 is odd
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(odd.status().message(), "3 is odd");
  EXPECT_EQ(Quarter(5).status().message(), "5 is odd");
}

TEST(StatusTest, ReturnIfErrorStopsAtFirstError) {
  EXPECT_TRUE(CheckBoth(1, 2).ok());
  EXPECT_EQ(CheckBoth(1, -2).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(CheckBoth(-1, -2).message(), "negative");
}

TEST(StatusTest, AnnotateKeepsCodeAndPayloadAndPrependsContext) {
  absl::Status s = absl::NotFoundError("no such tensor");
  s.SetPayload("type.example/detail", absl::Cord("x"));
  absl::Status a = Annotate(s, "loading model.safetensors");
  EXPECT_EQ(a.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(a.message(), "loading model.safetensors: no such tensor");
  ASSERT_TRUE(a.GetPayload("type.example/detail").has_value());
  EXPECT_EQ(std::string(*a.GetPayload("type.example/detail")), "x");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ctx").ok());
}

TEST(StatusTest, CodeNames) {
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kUnauthenticated), "UNAUTHENTICATED");
}

}  // namespace
}  // namespace deepsearch
