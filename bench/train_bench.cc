// Tree-GRPO training throughput (trainer/trainer.h) on synthetic batches shaped like the
// learner's, against the sgemm ceiling measured in the same run:
//
//   build/bench/train_bench [--preset small] [--groups 1] [--group-size 8] [--prompt 64]
//                           [--response 256] [--steps 3] [--dtypes float32,bfloat16]
//                           [--mini-batches 1,8] [--micro-batch-tokens 18432]
//
// A batch is `groups` trees of `group-size` trajectories each. A group shares one prompt of
// prompt x U[0.75, 1.25] tokens; each trajectory has its own response of response x
// U[0.5, 1.5] tokens, ids in [0, vocab-limit), token scores constant over 32-token steps in
// [-1, 1] with the last step's equal to the final score (+-1), and behaviour log-probs.
// For every variant (compute dtype x mini-batches per step x micro-batch token limit) a fresh
// trainer over the same random model takes one untimed warm-up step, then `steps` timed
// Trainer::Step calls; the median is reported. The default (one group) keeps the run under
// two minutes on two cores. The learner's batches are far larger (256 groups of 8 in 8
// mini-batches), so its micro-batches fill --micro-batch-tokens (~57 sequences at the
// default); --groups 4 --mini-batches 1 (32 sequences in one micro-batch) is closer to that.
//
// Tokens are the prompt + response tokens that go through forward and backward (padding not
// counted). Model FLOPs: 6 P per token (forward 2P + backward 4P, P = the model's parameters,
// attention not counted), the usual training figure; and 8 P per token, which adds the extra
// no-grad forward Trainer::Step makes for the proximal policy's log-probs (pi_old). Each is
// quoted as a fraction of the fp32 sgemm ceiling (bench/roofline.h), bf16 compute included;
// the rate of a bf16 ATen matmul is printed beside it for reference. The ceiling is measured
// before and after the variants and the higher reading is used: a long run on a shared
// machine can catch one slow reading, which would flatter every ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_split.h"
#include "trainer/trainer.h"

#include "bench/roofline.h"
#include "common/core/progress.h"
#include "common/core/rng.h"
#include "common/model/qwen2_model.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Options {
  std::string preset = "small";
  int64_t vocab = 128;        // the task tokenizer's ids, padded to a multiple of 64
  int64_t vocab_limit = 100;  // the task tokenizer's ids
  int groups = 1;
  int group_size = 8;
  int prompt = 64;
  int response = 256;
  int steps = 3;
  std::string dtypes = "float32,bfloat16";
  std::string mini_batches = "1,8";
  std::string micro_batch_tokens = "18432";
  bool decoupled = false;
  uint64_t seed = 1;
};

constexpr int kScoreStep = 32;  // tokens per expansion: token scores change between steps

std::vector<TrainSequence> MakeBatch(const Options& o) {
  Rng rng(o.seed);
  std::vector<TrainSequence> batch;
  for (int g = 0; g < o.groups; ++g) {
    const int64_t p = rng.UniformInt(o.prompt * 3 / 4, o.prompt * 5 / 4);
    std::vector<int32_t> prompt;
    for (int64_t i = 0; i < p; ++i)
      prompt.push_back(static_cast<int32_t>(rng.UniformInt(0, o.vocab_limit - 1)));
    for (int k = 0; k < o.group_size; ++k) {
      TrainSequence s;
      s.group_id = "tree" + std::to_string(g);
      s.prompt_tokens = prompt;
      s.final_score = rng.Bernoulli(0.5) ? 1.0f : -1.0f;
      const int64_t r = rng.UniformInt(o.response / 2, o.response * 3 / 2);
      float score = 0;
      for (int64_t i = 0; i < r; ++i) {
        if (i % kScoreStep == 0) score = static_cast<float>(rng.Uniform() * 2 - 1);
        const bool last_step = i >= (r - 1) / kScoreStep * kScoreStep;
        s.response_tokens.push_back(static_cast<int32_t>(rng.UniformInt(0, o.vocab_limit - 1)));
        s.token_scores.push_back(last_step ? s.final_score : score);
        s.behavior_logprobs.push_back(static_cast<float>(-4.6 + 0.5 * rng.Normal()));
      }
      batch.push_back(std::move(s));
    }
  }
  return batch;
}

struct Packing {
  int64_t padded_tokens = 0;  // positions computed, padding included
  int64_t micro_batches = 0;
};

// The trainer's packing rule (trainer.cc) replayed: the batch split in order into `parts`
// mini-batches, each packed greedily into micro-batches of at most `max_tokens` real tokens,
// every micro-batch padded to its longest sequence.
Packing Pack(const std::vector<TrainSequence>& batch, size_t parts, int64_t max_tokens) {
  const size_t n = batch.size();
  parts = std::min(parts, n);
  int64_t padded = 0, micro = 0;
  auto tokens = [&](size_t i) {
    return static_cast<int64_t>(batch[i].prompt_tokens.size() + batch[i].response_tokens.size());
  };
  for (size_t k = 0; k < parts; ++k) {
    const size_t begin = k * n / parts, end = (k + 1) * n / parts;
    size_t start = begin;
    int64_t used = 0, longest = 0;
    for (size_t i = begin; i < end; ++i) {
      if (i > start && used + tokens(i) > max_tokens) {
        padded += static_cast<int64_t>(i - start) * longest;
        ++micro;
        start = i;
        used = 0;
        longest = 0;
      }
      used += tokens(i);
      longest = std::max(longest, tokens(i));
    }
    if (start < end) {
      padded += static_cast<int64_t>(end - start) * longest;
      ++micro;
    }
  }
  return {padded, micro};
}

// Best of `repeats` timings of an n x n x n bfloat16 ATen matmul (after a warm-up), GFLOP/s.
double MeasureBf16MatmulGflops(int64_t n = 1024, int repeats = 5) {
  c10::NoGradGuard no_grad;
  const at::Tensor a = at::randn({n, n}).to(at::kBFloat16);
  const at::Tensor b = at::randn({n, n}).to(at::kBFloat16);
  at::Tensor c = at::matmul(a, b);
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = Now();
    c = at::matmul(a, b);
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) / (Now() - t0) / 1e9);
  }
  return best;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  using namespace deepsearch;
  bench::Options o;
  CLI::App app{"Tree-GRPO training throughput against the sgemm ceiling"};
  app.add_option("--preset", o.preset, "Model preset")->capture_default_str();
  app.add_option("--vocab", o.vocab, "Vocabulary size (the task tokenizer's, padded)")
      ->capture_default_str();
  app.add_option("--vocab-limit", o.vocab_limit, "Token ids the tokenizer has")
      ->capture_default_str();
  app.add_option("--groups", o.groups, "Advantage groups (trees) per batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--group-size", o.group_size, "Trajectories per group")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--prompt", o.prompt, "Mean prompt tokens (x U[0.75, 1.25] per group)")
      ->capture_default_str()
      ->check(CLI::Range(2, 4096));
  app.add_option("--response", o.response, "Mean response tokens (x U[0.5, 1.5] per sequence)")
      ->capture_default_str()
      ->check(CLI::Range(2, 4096));
  app.add_option("--steps", o.steps, "Timed training steps per variant (after one warm-up)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--dtypes", o.dtypes, "Comma-separated compute dtypes")->capture_default_str();
  app.add_option("--mini-batches", o.mini_batches, "Comma-separated optimizer steps per step")
      ->capture_default_str();
  app.add_option("--micro-batch-tokens", o.micro_batch_tokens,
                 "Comma-separated limits of tokens per forward/backward")
      ->capture_default_str();
  app.add_flag("--decoupled", o.decoupled, "Weight tokens by the behaviour importance ratio");
  app.add_option("--seed", o.seed, "Seed of the model and the batch")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!ConfigureTorchRuntime(RuntimeConfig{}).ok()) return 1;

  absl::StatusOr<Qwen2Config> config = Qwen2Config::Preset(o.preset, o.vocab);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  const std::vector<std::string> dtypes = absl::StrSplit(o.dtypes, ',');
  std::vector<int> minis;
  for (absl::string_view m : absl::StrSplit(o.mini_batches, ','))
    minis.push_back(std::stoi(std::string(m)));
  std::vector<int64_t> micros;
  for (absl::string_view m : absl::StrSplit(o.micro_batch_tokens, ','))
    micros.push_back(std::stoll(std::string(m)));

  const std::vector<TrainSequence> batch = bench::MakeBatch(o);
  int64_t tokens = 0, response_tokens = 0;
  for (const TrainSequence& s : batch) {
    tokens += static_cast<int64_t>(s.prompt_tokens.size() + s.response_tokens.size());
    response_tokens += static_cast<int64_t>(s.response_tokens.size());
  }
  const double params = static_cast<double>(config->NumParameters());

  const bench::SgemmCeiling before = bench::MeasureSgemm();
  std::printf(
      "sgemm ceiling, start: %.1f GFLOP/s (1024^3 fp32, 1 thread; OpenBLAS %.1f, packed kernel "
      "%.1f)\n",
      before.best(), before.blas_gflops, before.packed_gflops);
  std::printf("bf16 ATen matmul 1024^3, for reference: %.1f GFLOP/s\n",
              bench::MeasureBf16MatmulGflops());
  std::printf(
      "model: %s, %.2fM parameters, vocab %lld (%lld used); batch: %d groups x %d = %zu "
      "sequences, %lld tokens (%lld response), median of %d steps after 1 warm-up\n\n",
      o.preset.c_str(), params / 1e6, static_cast<long long>(o.vocab),
      static_cast<long long>(o.vocab_limit), o.groups, o.group_size, batch.size(),
      static_cast<long long>(tokens), static_cast<long long>(response_tokens), o.steps);
  std::fflush(stdout);

  struct Row {
    std::string dtype;
    int minis;
    int64_t micro_tokens;
    bench::Packing packing;
    double seconds, min_seconds, max_seconds;
  };
  std::vector<Row> rows;
  ProgressReporter::Options progress_options;
  progress_options.label = "train_bench";
  progress_options.total =
      static_cast<int64_t>(dtypes.size() * minis.size() * micros.size()) * (o.steps + 1);
  progress_options.unit = "step";
  ProgressReporter progress(std::move(progress_options));
  for (const std::string& dtype : dtypes) {
    for (int mini : minis) {
      for (int64_t micro : micros) {
        progress.SetStatus(dtype + ", " + std::to_string(mini) +
                           " mini-batch(es), micro-batches of <= " + std::to_string(micro) +
                           " tokens");
        auto model = Qwen2Model::Create(*config, {});
        if (!model.ok()) {
          std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
          return 1;
        }
        (*model)->InitializeRandom(o.seed);
        TrainerConfig tc;
        tc.lr = 1e-6;
        tc.warmup_steps = 0;
        tc.mini_batches = mini;
        tc.micro_batch_tokens = micro;
        tc.compute_dtype = dtype;
        tc.vocab_limit = o.vocab_limit;
        tc.decoupled = o.decoupled;
        auto trainer = Trainer::Create(*std::move(model), tc);
        if (!trainer.ok()) {
          std::fprintf(stderr, "%s\n", std::string(trainer.status().message()).c_str());
          return 1;
        }
        std::vector<double> seconds;
        for (int s = 0; s <= o.steps; ++s) {
          const double t0 = bench::Now();
          absl::StatusOr<TrainStepStats> stats = (*trainer)->Step(batch);
          const double t1 = bench::Now();
          if (!stats.ok()) {
            std::fprintf(stderr, "%s\n", std::string(stats.status().message()).c_str());
            return 1;
          }
          if (stats->forward_tokens != tokens) {
            std::fprintf(stderr, "the trainer saw %lld tokens, expected %lld\n",
                         static_cast<long long>(stats->forward_tokens),
                         static_cast<long long>(tokens));
            return 1;
          }
          if (s > 0) seconds.push_back(t1 - t0);  // step 0 is the warm-up
          progress.Add(1);
        }
        rows.push_back({dtype, mini, micro, bench::Pack(batch, static_cast<size_t>(mini), micro),
                        bench::Median(seconds), *std::min_element(seconds.begin(), seconds.end()),
                        *std::max_element(seconds.begin(), seconds.end())});
      }
    }
  }
  progress.Finish();
  const bench::SgemmCeiling after = bench::MeasureSgemm();
  const double sgemm = std::max(before.best(), after.best());
  std::printf(
      "sgemm ceiling, end: %.1f GFLOP/s (OpenBLAS %.1f, packed kernel %.1f); ratios below use "
      "%.1f\n",
      after.best(), after.blas_gflops, after.packed_gflops, sgemm);

  std::printf(
      "\n| compute dtype | mini-batches | micro-batch tokens | sequences / micro-batch | padded / "
      "real tokens | step s (min-max) | tokens/s | 6PT GFLOP/s | 6PT / ceiling | 8PT GFLOP/s | "
      "8PT / ceiling |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    const double rate = static_cast<double>(tokens) / r.seconds;
    const double six = 6 * params * rate / 1e9, eight = 8 * params * rate / 1e9;
    std::printf(
        "| %s | %d | %lld | %.1f | %.2f | %.2f (%.2f-%.2f) | %.0f | %.1f | %.0f%% | %.1f | %.0f%% "
        "|\n",
        r.dtype.c_str(), r.minis, static_cast<long long>(r.micro_tokens),
        static_cast<double>(batch.size()) / static_cast<double>(r.packing.micro_batches),
        static_cast<double>(r.packing.padded_tokens) / static_cast<double>(tokens), r.seconds,
        r.min_seconds, r.max_seconds, rate, six, 100 * six / sgemm, eight, 100 * eight / sgemm);
  }
  return 0;
}
