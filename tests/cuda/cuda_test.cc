// The CUDA path against the CPU path: the same model (InitializeRandom draws every weight
// from the project's own RNG, so a seed gives one model on every device) run on both.
//
//   * logits: Forward and the KV-cached Step, float32 and bfloat16;
//   * sampling: SampleRows draws the same tokens from the same logits and seeds;
//   * the inference engine: the same requests give the same samples;
//   * a Tree-GRPO training step: the same statistics and the same updated weights;
//   * a one-rank NCCL process group: its collectives.
//
// Every test needs a GPU and skips without one (CI's machines have none; scripts/gpu_check.sh
// runs this binary on a lent GPU machine). Tolerances: float32 on the GPU runs cuBLAS with
// TF32 off (LibTorch's default for matmul), so the two devices differ by reduction order
// only, ~1e-6 relative; bfloat16 rounds every product's inputs to 8 bits of mantissa, and
// the two devices round in different places.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "trainer/trainer.h"

#include "common/core/rng.h"
#include "common/model/qwen2_model.h"
#include "common/model/token_sampling.h"
#include "learner/data_parallel.h"
#include "tests/free_port.h"

namespace deepsearch {
namespace {

#define DS_REQUIRE_CUDA()                                                        \
  do {                                                                           \
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (scripts/gpu_check.sh)"; \
  } while (0)

const at::Device kCuda(at::kCUDA, 0);

Qwen2Config Config() {
  Qwen2Config c;
  c.vocab_size = 96;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.tie_word_embeddings = false;
  c.max_position_embeddings = 512;
  c.rope_theta = 10000.0;
  c.initializer_range = 0.2;
  return c;
}

std::unique_ptr<Qwen2Model> Model(at::Device device, at::ScalarType dtype = at::kFloat,
                                  uint64_t seed = 3) {
  auto model = Qwen2Model::Create(Config(), {.dtype = dtype, .device = device});
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->InitializeRandom(seed);
  return std::move(*model);
}

double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU).to(at::kDouble) - b.to(at::kCPU).to(at::kDouble))
      .abs()
      .max()
      .item<double>();
}

double RelativeError(const at::Tensor& x, const at::Tensor& ref) {
  const at::Tensor r = ref.to(at::kCPU).to(at::kDouble);
  return ((x.to(at::kCPU).to(at::kDouble) - r).norm() / r.norm()).item<double>();
}

// Right-padded rows of random ids and their lengths.
std::pair<at::Tensor, at::Tensor> Batch(const std::vector<int64_t>& lengths, uint64_t seed) {
  Rng rng(seed);
  int64_t longest = 0;
  for (int64_t n : lengths) longest = std::max(longest, n);
  at::Tensor ids = at::zeros({static_cast<int64_t>(lengths.size()), longest}, at::kLong);
  for (size_t b = 0; b < lengths.size(); ++b) {
    for (int64_t t = 0; t < lengths[b]; ++t) {
      ids[static_cast<int64_t>(b)][t] = rng.UniformInt(0, Config().vocab_size - 1);
    }
  }
  return {ids, at::tensor(lengths, at::kLong)};
}

TEST(CudaModelTest, ForwardMatchesCpu) {
  DS_REQUIRE_CUDA();
  c10::NoGradGuard no_grad;
  const auto [ids, lengths] = Batch({17, 5, 30, 1}, 1);
  const at::Tensor cpu = Model(at::kCPU)->Forward(ids, lengths);
  const at::Tensor gpu = Model(kCuda)->Forward(ids.to(kCuda), lengths.to(kCuda));
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_LT(MaxAbsDiff(gpu, cpu), 1e-4);

  const at::Tensor bf16 = Model(kCuda, at::kBFloat16)->Forward(ids.to(kCuda), lengths.to(kCuda));
  const at::Tensor bf16_cpu = Model(at::kCPU, at::kBFloat16)->Forward(ids, lengths);
  // Both bf16 runs within the same distance of the float32 truth.
  const double gpu_error = RelativeError(bf16, cpu), cpu_error = RelativeError(bf16_cpu, cpu);
  EXPECT_LT(gpu_error, 0.03);
  EXPECT_LT(gpu_error, 2 * cpu_error + 1e-3) << "cpu bf16 error " << cpu_error;
}

// Prefill then decode, the engine's path: each sequence's logits after every token.
std::vector<at::Tensor> StepLogits(const Qwen2Model& model,
                                   const std::vector<std::vector<int32_t>>& rows) {
  c10::NoGradGuard no_grad;
  KvCache cache = model.NewCache();
  std::vector<KvCache::SequenceId> ids;
  std::vector<StepInput> prefill;
  for (const auto& r : rows) {
    ids.push_back(cache.Create());
    prefill.push_back({ids.back(), absl::MakeConstSpan(r).first(r.size() / 2)});
  }
  std::vector<at::Tensor> out = {*model.Step(cache, prefill)};
  for (size_t t = 0;; ++t) {
    std::vector<StepInput> step;
    for (size_t i = 0; i < rows.size(); ++i) {
      const size_t at = rows[i].size() / 2 + t;
      if (at < rows[i].size())
        step.push_back({ids[i], absl::MakeConstSpan(rows[i]).subspan(at, 1)});
    }
    if (step.empty()) break;
    out.push_back(*model.Step(cache, step));
  }
  return out;
}

TEST(CudaModelTest, CachedStepsMatchCpu) {
  DS_REQUIRE_CUDA();
  Rng rng(5);
  std::vector<std::vector<int32_t>> rows(6);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t t = 0; t < 8 + 7 * static_cast<int64_t>(i); ++t)
      rows[i].push_back(static_cast<int32_t>(rng.UniformInt(0, Config().vocab_size - 1)));
  }
  const std::vector<at::Tensor> cpu = StepLogits(*Model(at::kCPU), rows);
  const std::vector<at::Tensor> gpu = StepLogits(*Model(kCuda), rows);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t s = 0; s < cpu.size(); ++s) {
    EXPECT_LT(MaxAbsDiff(gpu[s], cpu[s]), 1e-4) << "step " << s;
  }
}

TEST(CudaSamplingTest, SameLogitsAndSeedsDrawTheSameTokens) {
  DS_REQUIRE_CUDA();
  at::Tensor logits = at::randn({64, 96}, at::TensorOptions().dtype(at::kFloat)) * 3;
  SamplingParams params;
  params.temperature = 0.8f;
  params.top_p = 0.9f;
  params.top_k = 40;
  std::vector<Rng> cpu_rngs, gpu_rngs;
  for (int i = 0; i < 64; ++i) {
    cpu_rngs.emplace_back(100 + i);
    gpu_rngs.emplace_back(100 + i);
  }
  std::vector<SampleSlot> cpu_slots, gpu_slots;
  for (int i = 0; i < 64; ++i) {
    cpu_slots.push_back({i, &params, &cpu_rngs[static_cast<size_t>(i)]});
    gpu_slots.push_back({i, &params, &gpu_rngs[static_cast<size_t>(i)]});
  }
  const std::vector<SampledToken> cpu = SampleRows(logits, cpu_slots, 90);
  const std::vector<SampledToken> gpu = SampleRows(logits.to(kCuda), gpu_slots, 90);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(gpu[i].token, cpu[i].token) << "row " << i;
    EXPECT_NEAR(gpu[i].logprob, cpu[i].logprob, 1e-5) << "row " << i;
    EXPECT_NEAR(gpu[i].entropy, cpu[i].entropy, 1e-4) << "row " << i;
  }
}

TEST(CudaEngineTest, ServesTheSameSamplesAsOnCpu) {
  DS_REQUIRE_CUDA();
  auto run = [](at::Device device) {
    EngineOptions options;
    options.metrics = new MetricsRegistry();  // one per engine, kept for the process
    auto engine = InferenceEngine::Create(Model(device), 1, options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    std::vector<ExpansionResult> results;
    for (int r = 0; r < 4; ++r) {
      ExpansionRequest request;
      for (int t = 0; t < 5 + 3 * r; ++t) request.tokens.push_back((7 * t + r) % 90);
      request.num_samples = 4;
      request.sampling.max_new_tokens = 24;
      request.sampling.top_k = 1;  // greedy: the tokens must agree whatever the rounding
      request.sampling.seed = 9 + r;
      results.push_back((*engine)->Expand(request));
    }
    return results;
  };
  const std::vector<ExpansionResult> cpu = run(at::kCPU), gpu = run(kCuda);
  for (size_t r = 0; r < cpu.size(); ++r) {
    ASSERT_TRUE(gpu[r].status.ok()) << gpu[r].status;
    ASSERT_EQ(gpu[r].samples.size(), cpu[r].samples.size());
    for (size_t s = 0; s < cpu[r].samples.size(); ++s) {
      EXPECT_EQ(gpu[r].samples[s].tokens, cpu[r].samples[s].tokens) << "request " << r;
      for (size_t t = 0; t < cpu[r].samples[s].logprobs.size(); ++t) {
        EXPECT_NEAR(gpu[r].samples[s].logprobs[t], cpu[r].samples[s].logprobs[t], 1e-4);
      }
    }
  }
}

std::vector<TrainSequence> RlBatch() {
  Rng rng(17);
  std::vector<TrainSequence> batch;
  for (int g = 0; g < 2; ++g) {
    for (int k = 0; k < 4; ++k) {
      TrainSequence s;
      s.group_id = "tree" + std::to_string(g);
      for (int64_t i = 0, n = rng.UniformInt(3, 9); i < n; ++i)
        s.prompt_tokens.push_back(static_cast<int32_t>(rng.UniformInt(0, 89)));
      for (int64_t i = 0, n = rng.UniformInt(2, 12); i < n; ++i) {
        s.response_tokens.push_back(static_cast<int32_t>(rng.UniformInt(0, 89)));
        s.token_scores.push_back(static_cast<float>(rng.Uniform() * 2 - 1));
        s.behavior_logprobs.push_back(static_cast<float>(-3.0 - rng.Uniform()));
      }
      s.final_score = rng.Bernoulli(0.5) ? 1.0f : -1.0f;
      s.token_scores.back() = s.final_score;
      batch.push_back(std::move(s));
    }
  }
  return batch;
}

TEST(CudaTrainerTest, TreeGrpoStepMatchesCpu) {
  DS_REQUIRE_CUDA();
  TrainerConfig config;
  config.lr = 1e-3;
  config.warmup_steps = 0;
  config.mini_batches = 2;
  config.vocab_limit = 90;
  auto cpu = *Trainer::Create(Model(at::kCPU), config);
  auto gpu = *Trainer::Create(Model(kCuda), config);
  const std::vector<TrainSequence> batch = RlBatch();
  for (int step = 0; step < 2; ++step) {
    auto a = cpu->Step(batch);
    auto b = gpu->Step(batch);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_NEAR(b->loss, a->loss, 1e-5 + 1e-4 * std::abs(a->loss)) << "step " << step;
    EXPECT_NEAR(b->grad_norm, a->grad_norm, 1e-4 * a->grad_norm) << "step " << step;
    EXPECT_EQ(b->tokens, a->tokens);
  }
  const std::vector<at::Tensor> pa = cpu->model().Parameters(), pb = gpu->model().Parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(pb[i].is_cuda());
    EXPECT_LT(MaxAbsDiff(pb[i], pa[i]), 1e-5) << "parameter " << i;
  }
}

TEST(CudaDataParallelTest, OneRankNcclGroupReduces) {
  DS_REQUIRE_CUDA();
  DataParallelConfig config;
  config.backend = "nccl";
  config.world_size = 1;
  config.rank = 0;
  config.master = absl::StrCat("127.0.0.1:", FreePort());
  auto reducer = CreateProcessGroupReducer(config);
  ASSERT_TRUE(reducer.ok()) << reducer.status();
  std::vector<at::Tensor> tensors = {
      at::arange(6, at::TensorOptions().device(kCuda)).to(at::kFloat),
      at::full({2, 2}, 1.5, at::TensorOptions().device(kCuda)).to(at::kBFloat16)};
  const std::vector<at::Tensor> before = {tensors[0].clone(), tensors[1].clone()};
  ASSERT_TRUE((*reducer)->AllReduceMean(tensors).ok());
  ASSERT_TRUE((*reducer)->Broadcast(tensors).ok());
  EXPECT_TRUE(at::equal(tensors[0], before[0]));
  EXPECT_TRUE(at::equal(tensors[1], before[1]));
  std::vector<double> values = {2.5, -1.0};
  ASSERT_TRUE((*reducer)->AllReduceSum(values).ok());
  EXPECT_EQ(values, std::vector<double>({2.5, -1.0}));
}

TEST(CudaDeviceTest, CudaIsRefusedClearlyWithoutAGpu) {
  if (at::hasCUDA()) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<at::Device> device = ParseDevice("cuda");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
#ifdef DEEPSEARCH_HAS_CUDA
  EXPECT_THAT(device.status().message(), ::testing::HasSubstr("no GPU is usable here"));
#else
  EXPECT_THAT(device.status().message(), ::testing::HasSubstr("has no CUDA"));
#endif
  EXPECT_TRUE(ParseDevice("cpu").ok());
}

}  // namespace
}  // namespace deepsearch
