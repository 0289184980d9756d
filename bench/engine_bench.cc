// The inference engine on an MCTS-shaped workload, against plain batched decoding:
//
//   build/bench/engine_bench [--trees 64] [--width 8] [--depth 16] [--step 32] [--expansions 16]
//                            [--prompt 64] [--preset small] [--kv-budget-mb 1024]
//
// Each of `trees` trees starts from its own random prompt and runs `expansions` expansions:
// a frontier node chosen at random (its depth below --depth) is expanded into `width`
// children of `step` tokens, which join the frontier (MCTS's global frontier selection has
// the same access pattern: any node of the tree, not only the last one). Every tree submits
// its next expansion from the callback of the last one, so all trees are in flight at once.
//
// Reported: tokens computed / tokens sampled beyond each prompt's first prefill (what the
// prefix cache saves: an expansion should compute only its own new tokens), and the
// engine's throughput / plain batched decoding's (model Step over a fixed batch, no engine)
// at the engine's mean decode batch and the workload's mean context.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/synchronization/notification.h"

#include "actor/engine.h"
#include "bench/roofline.h"
#include "common/core/rng.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Options {
  int trees = 64, width = 8, depth = 16, step = 32, expansions = 16, prompt = 64;
  std::string preset = "small";
  int64_t kv_budget_mb = 1024;
  uint64_t seed = 1;
};

// One tree's state, touched only from engine callbacks (one at a time) and, before its first
// submission, the main thread.
struct Tree {
  Rng rng{0};
  std::vector<std::pair<int64_t, int>> frontier;  // (handle, depth)
  int expansions_left = 0;
  int64_t prefix_tokens = 0;  // sum of expanded prefix lengths
  int expansions_done = 0;
};

// Plain batched decoding: B sequences with `context` cached positions, `steps` decode steps.
double PlainDecodeTokensPerSecond(const Qwen2Model& model, int64_t batch, int64_t context,
                                  int64_t steps) {
  KvCache cache = model.NewCache(batch * ((context + steps) / KvCache::kBlock + 2));
  Rng rng(3);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
  std::vector<StepInput> inputs;
  for (auto& p : prompts) {
    for (int64_t i = 0; i < context; ++i) p.push_back(static_cast<int32_t>(rng.UniformInt(0, 99)));
    inputs.push_back({cache.Create(), p});
  }
  at::Tensor logits = *model.Step(cache, inputs);
  std::vector<int32_t> tokens(static_cast<size_t>(batch));
  std::vector<StepInput> step(static_cast<size_t>(batch));
  const double t0 = Now();
  for (int64_t s = 0; s < steps; ++s) {
    const at::Tensor next = logits.argmax(-1).to(at::kInt).contiguous();
    for (int64_t b = 0; b < batch; ++b) {
      tokens[static_cast<size_t>(b)] = next.data_ptr<int32_t>()[b];
      step[static_cast<size_t>(b)] = {
          inputs[static_cast<size_t>(b)].sequence,
          absl::Span<const int32_t>(&tokens[static_cast<size_t>(b)], 1)};
    }
    logits = *model.Step(cache, step);
  }
  return static_cast<double>(batch * steps) / (Now() - t0);
}

int Run(const Options& o) {
  if (!ConfigureTorchRuntime(RuntimeConfig{}).ok()) return 1;
  at::NoGradGuard no_grad;
  const double sgemm = MeasureSgemmGflops();
  auto config = Qwen2Config::Preset(o.preset, 128);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  auto model = *Qwen2Model::Create(*config, {});
  model->InitializeRandom(o.seed);
  auto reference = *Qwen2Model::Create(*config, {});
  reference->InitializeRandom(o.seed);

  EngineOptions options;
  options.max_batch = 256;
  options.max_step_tokens = 4096;
  options.kv_budget_bytes = o.kv_budget_mb << 20;
  options.vocab_limit = 100;
  MetricsRegistry metrics;
  options.metrics = &metrics;
  auto engine = std::move(*InferenceEngine::Create(std::move(model), 1, options));

  std::vector<Tree> trees(static_cast<size_t>(o.trees));
  std::atomic<int> running{o.trees};
  absl::Notification all_done;
  std::function<void(size_t, int64_t, int)> expand;
  // Expands the node of tree i named by `handle` (0: the root, a new prompt) at `depth`.
  expand = [&](size_t i, int64_t handle, int depth) {
    Tree& tree = trees[i];
    ExpansionRequest r;
    r.prefix_handle = handle;
    if (handle == 0) {
      for (int k = 0; k < o.prompt; ++k)
        r.tokens.push_back(static_cast<int32_t>(tree.rng.UniformInt(0, 99)));
    }
    r.num_samples = o.width;
    r.sampling.max_new_tokens = o.step;
    r.sampling.seed = tree.rng.Next();
    engine->Submit(std::move(r), [&, i, depth](ExpansionResult result) {
      Tree& t = trees[i];
      if (!result.status.ok()) {
        std::fprintf(stderr, "tree %zu: %s\n", i, std::string(result.status.message()).c_str());
        std::abort();
      }
      t.prefix_tokens += result.prefix_length;
      ++t.expansions_done;
      for (const PolicySample& s : result.samples) t.frontier.push_back({s.handle, depth + 1});
      // The next node: any frontier node above the depth limit.
      std::vector<size_t> candidates;
      for (size_t k = 0; k < t.frontier.size(); ++k) {
        if (t.frontier[k].second < o.depth) candidates.push_back(k);
      }
      if (--t.expansions_left == 0 || candidates.empty()) {
        if (--running == 0) all_done.Notify();
        return;
      }
      const size_t pick = candidates[static_cast<size_t>(
          t.rng.UniformInt(0, static_cast<int64_t>(candidates.size()) - 1))];
      const auto [next, next_depth] = t.frontier[pick];
      t.frontier.erase(t.frontier.begin() + static_cast<std::ptrdiff_t>(pick));
      expand(i, next, next_depth);
    });
  };
  const double t0 = Now();
  for (size_t i = 0; i < trees.size(); ++i) {
    trees[i].rng = Rng(o.seed).Fork(i);
    trees[i].expansions_left = o.expansions;
    expand(i, 0, 0);
  }
  all_done.WaitForNotification();
  const double seconds = Now() - t0;
  const EngineStats stats = engine->stats();

  const int64_t first_prefills = static_cast<int64_t>(o.trees) * o.prompt;
  const double ratio = static_cast<double>(stats.tokens_computed - first_prefills) /
                       static_cast<double>(stats.tokens_sampled);
  const double engine_tps = static_cast<double>(stats.tokens_sampled) / seconds;
  const double mean_batch =
      static_cast<double>(stats.decode_tokens) / std::max<int64_t>(1, stats.steps);
  int64_t prefix_tokens = 0, expansions = 0;
  for (const Tree& t : trees) {
    prefix_tokens += t.prefix_tokens;
    expansions += t.expansions_done;
  }
  const double mean_context =
      static_cast<double>(prefix_tokens) / static_cast<double>(expansions) + o.step / 2.0;
  const double plain_tps =
      PlainDecodeTokensPerSecond(*reference, static_cast<int64_t>(mean_batch + 0.5),
                                 static_cast<int64_t>(mean_context), o.step);
  std::printf("sgemm ceiling: %.1f GFLOP/s\n", sgemm);
  std::printf(
      "workload: %d trees, %lld expansions (up to %d each), width %d, %d-token steps, depth <= %d, "
      "prompt %d, preset %s\n",
      o.trees, static_cast<long long>(expansions), o.expansions, o.width, o.step, o.depth, o.prompt,
      o.preset.c_str());
  std::printf(
      "wall %.1f s; tokens sampled %lld; tokens computed %lld (prefill %lld, decode %lld)\n",
      seconds, static_cast<long long>(stats.tokens_sampled),
      static_cast<long long>(stats.tokens_computed), static_cast<long long>(stats.prefill_tokens),
      static_cast<long long>(stats.decode_tokens));
  std::printf(
      "prefix cache: %lld lookups, %lld hits, %lld tokens reused, %lld evictions, %lld "
      "preemptions\n",
      static_cast<long long>(stats.prefix_lookups), static_cast<long long>(stats.prefix_hits),
      static_cast<long long>(stats.tokens_reused), static_cast<long long>(stats.evictions),
      static_cast<long long>(stats.preemptions));
  std::printf("KV: %.1f MB in use at the end, budget %.1f MB, cache holds %.1f MB\n",
              stats.kv_bytes_in_use / 1e6, stats.kv_bytes_budget / 1e6,
              stats.cache_bytes_held / 1e6);
  std::printf("tokens computed / tokens sampled (beyond first prefills): %.3f   (target <= 1.05)\n",
              ratio);
  std::printf(
      "engine %.0f tok/s at mean decode batch %.1f, mean context %.0f; plain batched decoding %.0f "
      "tok/s\n",
      engine_tps, mean_batch, mean_context, plain_tps);
  std::printf("engine / plain: %.2f   (target >= 0.8)\n", engine_tps / plain_tps);
  return 0;
}

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  deepsearch::bench::Options o;
  CLI::App app{"The inference engine on an MCTS-shaped workload"};
  app.add_option("--trees", o.trees)->capture_default_str();
  app.add_option("--width", o.width)->capture_default_str();
  app.add_option("--depth", o.depth)->capture_default_str();
  app.add_option("--step", o.step)->capture_default_str();
  app.add_option("--expansions", o.expansions, "Expansions per tree")->capture_default_str();
  app.add_option("--prompt", o.prompt)->capture_default_str();
  app.add_option("--preset", o.preset)->capture_default_str();
  app.add_option("--kv-budget-mb", o.kv_budget_mb)->capture_default_str();
  app.add_option("--seed", o.seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return deepsearch::bench::Run(o);
}
