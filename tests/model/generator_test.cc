// Sampling and batched generation: filters, determinism, stop conditions, log-probs and
// entropies, vocabulary masking, batched against one-by-one.
#include "common/model/generator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/core/rng.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

std::vector<float> LogSoftmax(const std::vector<double>& logits) {
  double max = logits[0];
  for (double x : logits) max = std::max(max, x);
  double sum = 0;
  for (double x : logits) sum += std::exp(x - max);
  std::vector<float> out;
  for (double x : logits) out.push_back(static_cast<float>(x - max - std::log(sum)));
  return out;
}

TEST(SamplerTest, TopKOneIsGreedyWithLowestIdOnTies) {
  Rng rng(1);
  EXPECT_EQ(SampleToken(LogSoftmax({0.1, 2.0, -1.0, 2.0}), 1, 1.0f, rng), 1);
  EXPECT_EQ(SampleToken(LogSoftmax({0.0, 0.0, 0.0}), 1, 1.0f, rng), 0);
}

// Frequencies over many draws follow the filtered, renormalised distribution.
std::map<int32_t, double> Frequencies(const std::vector<float>& logprobs, int32_t top_k,
                                      float top_p) {
  Rng rng(42);
  std::map<int32_t, double> counts;
  constexpr int kDraws = 40000;
  for (int i = 0; i < kDraws; ++i) counts[SampleToken(logprobs, top_k, top_p, rng)] += 1.0 / kDraws;
  return counts;
}

TEST(SamplerTest, FullDistributionFrequencies) {
  // p = 0.1, 0.2, 0.3, 0.4
  const std::vector<float> lp = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  auto f = Frequencies(lp, 0, 1.0f);
  EXPECT_NEAR(f[0], 0.1, 0.01);
  EXPECT_NEAR(f[1], 0.2, 0.01);
  EXPECT_NEAR(f[2], 0.3, 0.01);
  EXPECT_NEAR(f[3], 0.4, 0.01);
}

TEST(SamplerTest, TopKAndTopPKeepTheRightSets) {
  const std::vector<float> lp = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  // top_k = 2 keeps {3, 2} renormalised: 4/7 and 3/7.
  auto k2 = Frequencies(lp, 2, 1.0f);
  EXPECT_EQ(k2.size(), 2u);
  EXPECT_NEAR(k2[3], 4.0 / 7, 0.01);
  EXPECT_NEAR(k2[2], 3.0 / 7, 0.01);
  // top_p = 0.7 keeps {3, 2} (0.4 + 0.3 reaches 0.7): the same renormalised pair.
  auto p7 = Frequencies(lp, 0, 0.7f);
  EXPECT_EQ(p7.size(), 2u);
  EXPECT_NEAR(p7[3], 4.0 / 7, 0.01);
  // top_p = 0.5 needs two tokens as well (0.4 < 0.5); top_p = 0.4 keeps one.
  EXPECT_EQ(Frequencies(lp, 0, 0.5f).size(), 2u);
  EXPECT_EQ(Frequencies(lp, 0, 0.4f).size(), 1u);
  // top_k = 3 then top_p = 0.8 of the renormalised {0.4, 0.3, 0.2}/0.9: 0.444 + 0.333 < 0.8,
  // so all three stay.
  EXPECT_EQ(Frequencies(lp, 3, 0.8f).size(), 3u);
}

TEST(SamplerTest, ValidateNamesTheField) {
  SamplingParams p;
  p.temperature = 0;
  EXPECT_THAT(std::string(p.Validate().message()), HasSubstr("sampling.temperature must be > 0"));
  p = SamplingParams{};
  p.top_p = 1.5f;
  EXPECT_THAT(std::string(p.Validate().message()), HasSubstr("sampling.top_p must be in (0, 1]"));
  p = SamplingParams{};
  p.max_new_tokens = 0;
  EXPECT_THAT(std::string(p.Validate().message()),
              HasSubstr("sampling.max_new_tokens must be > 0"));
}

Qwen2Config Config() {
  Qwen2Config c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 256;
  c.initializer_range = 0.5;
  return c;
}

std::unique_ptr<Qwen2Model> RandomModel(uint64_t seed) {
  auto model = *Qwen2Model::Create(Config(), {});
  model->InitializeRandom(seed);
  return model;
}

// A model whose weights are all zero gives all-zero logits: a uniform distribution.
std::unique_ptr<Qwen2Model> UniformModel() { return *Qwen2Model::Create(Config(), {}); }

TEST(GeneratorTest, StopConditions) {
  auto model = UniformModel();
  GenerationRequest r;
  r.prompt = {1, 2, 3};
  r.sampling.top_k = 1;  // greedy: token 0 (all tied, lowest id)
  r.sampling.max_new_tokens = 5;

  Generator eos(*model, {.eos_token_ids = {0}});
  auto out = eos.Generate({&r, 1});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0][0].tokens, std::vector<int32_t>{0});
  EXPECT_EQ((*out)[0][0].finish, FinishReason::kEos);

  Generator plain(*model, {});
  r.sampling.stop_token_ids = {0};
  EXPECT_EQ((*plain.Generate({&r, 1}))[0][0].finish, FinishReason::kStopToken);

  r.sampling.stop_token_ids.clear();
  auto length = plain.Generate({&r, 1});
  EXPECT_EQ((*length)[0][0].tokens, std::vector<int32_t>(5, 0));
  EXPECT_EQ((*length)[0][0].finish, FinishReason::kLength);

  // Token 0 reads as "ab": the stop string "bab" completes within the second token.
  Generator with_text(*model, {.token_bytes = [](int32_t) { return std::string("ab"); }});
  r.sampling.stop_strings = {"bab"};
  auto stopped = with_text.Generate({&r, 1});
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ((*stopped)[0][0].tokens.size(), 2u);
  EXPECT_EQ((*stopped)[0][0].finish, FinishReason::kStopString);
  EXPECT_EQ(FinishReasonName(FinishReason::kStopString), "stop_string");
}

TEST(GeneratorTest, LogprobsAndEntropiesOfAUniformDistribution) {
  auto model = UniformModel();
  GenerationRequest r;
  r.prompt = {5};
  r.sampling.max_new_tokens = 3;
  r.sampling.temperature = 0.7f;  // temperature does not change a uniform distribution
  Generator g(*model, {.vocab_limit = 25});
  auto out = g.Generate({&r, 1});
  ASSERT_TRUE(out.ok());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR((*out)[0][0].logprobs[i], -std::log(25.0), 1e-5);
    EXPECT_NEAR((*out)[0][0].entropies[i], std::log(25.0), 1e-5);
  }
}

TEST(GeneratorTest, NeverSamplesBeyondTheTokenizerVocabulary) {
  auto model = RandomModel(3);
  GenerationRequest r;
  r.prompt = {1, 2};
  r.num_samples = 16;
  r.sampling.max_new_tokens = 20;
  Generator g(*model, {.vocab_limit = 30});
  auto out = g.Generate({&r, 1});
  ASSERT_TRUE(out.ok());
  for (const GeneratedSample& s : (*out)[0]) {
    for (int32_t t : s.tokens) EXPECT_LT(t, 30);
  }
}

TEST(GeneratorTest, SeededAndIndependentOfTheBatch) {
  auto model = RandomModel(5);
  std::vector<GenerationRequest> requests(3);
  requests[0].prompt = {1, 2, 3, 4, 5, 6};
  requests[1].prompt = {9};
  requests[2].prompt = {30, 31, 32};
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].num_samples = 3;
    requests[i].sampling.seed = 100 + i;
    requests[i].sampling.max_new_tokens = 12;
    requests[i].sampling.top_p = 0.9f;
  }
  requests[1].sampling.stop_token_ids = {7};
  Generator g(*model, {.eos_token_ids = {39}});
  auto together = g.Generate(requests);
  ASSERT_TRUE(together.ok()) << together.status();
  // Again: identical.
  auto again = g.Generate(requests);
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) EXPECT_EQ((*together)[i][j].tokens, (*again)[i][j].tokens);
  }
  // One request at a time, and with a batch limit that forces requests to wait: identical
  // tokens and (to float tolerance) identical log-probs.
  Generator narrow(*model, {.eos_token_ids = {39}, .max_batch = 4});
  auto limited = narrow.Generate(requests);
  ASSERT_TRUE(limited.ok());
  for (size_t i = 0; i < 3; ++i) {
    auto alone = g.Generate({&requests[i], 1});
    ASSERT_TRUE(alone.ok());
    for (size_t j = 0; j < 3; ++j) {
      const GeneratedSample& a = (*alone)[0][j];
      const GeneratedSample& b = (*together)[i][j];
      EXPECT_EQ(a.tokens, b.tokens) << i << "/" << j;
      EXPECT_EQ((*limited)[i][j].tokens, b.tokens) << i << "/" << j;
      ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
      // Relative 1e-5: the matrix products' summation order depends on the batch's row count
      // (OpenBLAS picks its kernel by shape where the CPU lacks AVX-512 for the packed one),
      // which moves an fp32 log-prob of magnitude ~3 by up to ~1.5e-5.
      for (size_t t = 0; t < a.logprobs.size(); ++t)
        EXPECT_NEAR(a.logprobs[t], b.logprobs[t], 1e-5 * std::max(1.0f, std::abs(b.logprobs[t])));
    }
  }
  // Samples of one request differ from each other (distinct streams).
  EXPECT_NE((*together)[0][0].tokens, (*together)[0][1].tokens);
  // Sample 0 does not depend on how many samples were asked for.
  GenerationRequest single = requests[0];
  single.num_samples = 1;
  EXPECT_EQ((*g.Generate({&single, 1}))[0][0].tokens, (*together)[0][0].tokens);
}

// Broken weights (here a NaN in the final norm) must not pass for a distribution: the
// generator stops with an error instead of sampling from NaN logits.
TEST(GeneratorTest, NonFiniteLogitsAreAnError) {
  auto model = RandomModel(3);
  {
    c10::NoGradGuard no_grad;
    for (auto& [name, tensor] : model->NamedParameters()) {
      if (name == "model.norm.weight") tensor.fill_(std::numeric_limits<float>::quiet_NaN());
    }
  }
  GenerationRequest r;
  r.prompt = {1, 2};
  r.sampling.max_new_tokens = 4;
  Generator g(*model, {});
  auto out = g.Generate({&r, 1});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(out.status().message()),
              ::testing::HasSubstr("the model's logits are not finite"));
}

TEST(GeneratorTest, RejectsBadRequests) {
  auto model = UniformModel();
  Generator g(*model, {});
  GenerationRequest r;
  EXPECT_THAT(std::string(g.Generate({&r, 1}).status().message()),
              HasSubstr("request 0: empty prompt"));
  r.prompt = {1, 40};
  EXPECT_THAT(std::string(g.Generate({&r, 1}).status().message()),
              HasSubstr("prompt token 40 out of range"));
  r.prompt = {1};
  r.sampling.stop_strings = {"x"};
  EXPECT_THAT(std::string(g.Generate({&r, 1}).status().message()),
              HasSubstr("stop strings need a tokenizer"));
}

}  // namespace
}  // namespace deepsearch
