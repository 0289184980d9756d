#include "search/mock_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::ElementsAre;

// Sample j of prefix p: the tokens (last token of p) + j + 1, repeated three times.
PolicySample Script(absl::Span<const int32_t> prefix, int32_t j, const ExpansionRequest&) {
  PolicySample s;
  const int32_t t = prefix.back() + j + 1;
  s.tokens = {t, t, t};
  s.logprobs = {-0.5f, -0.5f, -0.5f};
  s.finish = FinishReason::kEos;
  return s;
}

TEST(MockPolicyTest, ScriptsSamplesAndResolvesHandles) {
  MockPolicy policy(Script, /*weight_version=*/4);
  ExpansionRequest request;
  request.tokens = {1, 2};
  request.num_samples = 2;
  ExpansionResult first = policy.Expand(request);
  ASSERT_TRUE(first.status.ok());
  ASSERT_EQ(first.samples.size(), 2u);
  EXPECT_THAT(first.samples[1].tokens, ElementsAre(4, 4, 4));
  EXPECT_EQ(first.samples[0].weight_version, 4);
  EXPECT_EQ(first.prefix_length, 2);
  // Expand the first sample by its handle plus one more token.
  ExpansionRequest child;
  child.prefix_handle = first.samples[0].handle;
  child.tokens = {9};
  child.sampling.max_new_tokens = 2;  // cuts the scripted 3 tokens
  ExpansionResult second = policy.Expand(child);
  ASSERT_TRUE(second.status.ok());
  EXPECT_EQ(second.prefix_length, 6);
  EXPECT_THAT(second.samples[0].tokens, ElementsAre(10, 10));
  EXPECT_EQ(second.samples[0].finish, FinishReason::kLength);
  EXPECT_THAT(policy.requests()[1].tokens, ElementsAre(1, 2, 3, 3, 3, 9));
  policy.ReleaseHandle(first.samples[0].handle);
  EXPECT_EQ(policy.Expand(child).status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(policy.live_handles(), 2 + 1 - 1);
}

}  // namespace
}  // namespace deepsearch
