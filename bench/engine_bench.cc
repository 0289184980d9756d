// The inference engine on an MCTS-shaped workload, against plain batched decoding:
//
//   build/bench/engine_bench [--trees 64] [--width 8] [--depth 16] [--step 32] [--expansions 16]
//                            [--prompt 64] [--preset small] [--vocab 128] [--kv-budget-mb 1024]
//                            [--device cpu] [--dtype float32] [--plain-batch 0] [--max-batch 256]
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
// at the engine's mean decode batch (or --plain-batch) and the workload's mean context.
//
// On a GPU (--device cuda --dtype bfloat16 --preset qwen2.5-1.5b --vocab 151936) decoding is
// bound by memory bandwidth: plain decoding's bytes read per step (every weight once, plus
// the batch's cached keys and values) per second is quoted against the device's copy
// bandwidth measured in the same run. On the CPU the ceiling is sgemm GFLOP/s.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"

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
  int64_t vocab = 128;
  int64_t kv_budget_mb = 1024;
  std::string device = "cpu";
  std::string dtype = "float32";
  int64_t plain_batch = 0;  // 0: the engine's mean decode batch
  int32_t max_batch = 256;
  uint64_t seed = 1;
};

// The project's presets (Qwen2Config::Preset), and the shape of Qwen2.5-1.5B
// (config.json of the released model: 28 layers, hidden 1536, 12 heads, 2 KV heads).
absl::StatusOr<Qwen2Config> BenchConfig(const std::string& preset, int64_t vocab) {
  if (preset != "qwen2.5-1.5b") return Qwen2Config::Preset(preset, vocab);
  Qwen2Config c;
  c.vocab_size = vocab;
  c.hidden_size = 1536;
  c.intermediate_size = 8960;
  c.num_hidden_layers = 28;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 2;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.max_position_embeddings = 32768;
  c.tie_word_embeddings = true;
  c.dtype = "bfloat16";
  return c;
}

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
// Tokens per second; each step reads the sampled tokens back to the host, as the engine does.
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
  auto sample = [&] {
    const at::Tensor next = logits.narrow(-1, 0, 100).argmax(-1).to(at::kCPU, at::kInt);
    for (int64_t b = 0; b < batch; ++b) {
      tokens[static_cast<size_t>(b)] = next.data_ptr<int32_t>()[b];
      step[static_cast<size_t>(b)] = {
          inputs[static_cast<size_t>(b)].sequence,
          absl::Span<const int32_t>(&tokens[static_cast<size_t>(b)], 1)};
    }
  };
  sample();
  logits = *model.Step(cache, step);  // warm-up: the first decode step sets up the kernels
  const double t0 = Now();
  for (int64_t s = 1; s < steps; ++s) {
    sample();
    logits = *model.Step(cache, step);
  }
  sample();  // waits for the last step
  return static_cast<double>(batch * (steps - 1)) / (Now() - t0);
}

int Run(const Options& o) {
  if (!ConfigureTorchRuntime(RuntimeConfig{}).ok()) return 1;
  c10::NoGradGuard no_grad;
  auto fail = [](const absl::Status& status) {
    std::fprintf(stderr, "engine_bench: %s\n", std::string(status.message()).c_str());
    return 1;
  };
  auto config = BenchConfig(o.preset, o.vocab);
  if (!config.ok()) return fail(config.status());
  ModelOptions model_options;
  auto device = ParseDevice(o.device);
  if (!device.ok()) return fail(device.status());
  auto dtype = ParseModelDtype(o.dtype);
  if (!dtype.ok()) return fail(dtype.status());
  model_options.device = *device;
  model_options.dtype = *dtype;
  const bool on_cpu = device->is_cpu();
  // The ceiling of the run: sgemm on the CPU, copy bandwidth on a device.
  const double sgemm = on_cpu ? MeasureSgemmGflops() : 0;
  const double copy_gbps = on_cpu ? 0 : MeasureDeviceCopyGBps(device->str());

  auto model = Qwen2Model::Create(*config, model_options);
  if (!model.ok()) return fail(model.status());
  (*model)->InitializeRandom(o.seed);
  // The plain decoder gets the same weights (copied on the device, no second draw).
  auto reference = Qwen2Model::Create(*config, model_options);
  if (!reference.ok()) return fail(reference.status());
  int64_t weight_bytes = 0;
  {
    std::map<std::string, at::Tensor> weights;
    for (auto& [name, tensor] : (*model)->NamedParameters()) {
      weight_bytes += tensor.numel() * static_cast<int64_t>(tensor.element_size());
      weights.emplace(name, tensor);
    }
    const absl::Status loaded = (*reference)->LoadTensors([&](const std::string& name) {
      auto it = weights.find(name);
      return it == weights.end() ? at::Tensor() : it->second;
    });
    if (!loaded.ok()) return fail(loaded);
  }

  EngineOptions options;
  options.max_batch = o.max_batch;
  options.max_step_tokens = 4096;
  options.kv_budget_bytes = o.kv_budget_mb << 20;
  options.vocab_limit = 100;
  MetricsRegistry metrics;
  options.metrics = &metrics;
  auto created = InferenceEngine::Create(std::move(*model), 1, options);
  if (!created.ok()) return fail(created.status());
  auto engine = std::move(*created);

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
  engine.reset();  // frees its KV blocks before the plain decoder allocates its own
  const int64_t plain_batch =
      o.plain_batch > 0 ? o.plain_batch : static_cast<int64_t>(mean_batch + 0.5);
  const double plain_tps = PlainDecodeTokensPerSecond(**reference, plain_batch,
                                                      static_cast<int64_t>(mean_context), o.step);
  if (on_cpu) {
    std::printf("sgemm ceiling: %.1f GFLOP/s\n", sgemm);
  } else {
    std::printf("device %s: copy bandwidth %.0f GB/s (read + write)\n", device->str().c_str(),
                copy_gbps);
  }
  std::printf("model: %s, %s, %.1f M parameters, %.3f GB of weights\n", o.preset.c_str(),
              o.dtype.c_str(), static_cast<double>(config->NumParameters()) / 1e6,
              static_cast<double>(weight_bytes) / 1e9);
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
      "tok/s at batch %lld\n",
      engine_tps, mean_batch, mean_context, plain_tps, static_cast<long long>(plain_batch));
  std::printf("engine / plain: %.2f   (target >= 0.8)\n", engine_tps / plain_tps);
  if (!on_cpu) {
    // A decode step reads every weight once and each sequence's cached keys and values (K and
    // V of every layer over the mean context, which counts half the steps taken).
    const double kv_bytes_per_token =
        2.0 *
        static_cast<double>(config->num_hidden_layers * config->num_key_value_heads *
                            config->head_dim) *
        static_cast<double>(at::elementSize(*dtype));
    const double step_bytes = static_cast<double>(weight_bytes) +
                              static_cast<double>(plain_batch) * mean_context * kv_bytes_per_token;
    const double read_gbps = step_bytes * plain_tps / static_cast<double>(plain_batch) / 1e9;
    std::printf(
        "plain decoding reads %.2f GB per step: %.0f GB/s, %.2f of the device's copy bandwidth\n",
        step_bytes / 1e9, read_gbps, read_gbps / copy_gbps);
  }
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
  app.add_option("--preset", o.preset, "tiny, small or qwen2.5-1.5b")->capture_default_str();
  app.add_option("--vocab", o.vocab, "Vocabulary size of the model")->capture_default_str();
  app.add_option("--kv-budget-mb", o.kv_budget_mb)->capture_default_str();
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", o.dtype, "float32, bfloat16 or float16")->capture_default_str();
  app.add_option("--plain-batch", o.plain_batch,
                 "Batch of plain decoding (0: the engine's mean decode batch)")
      ->capture_default_str();
  app.add_option("--max-batch", o.max_batch, "The engine's decode batch limit")
      ->capture_default_str();
  app.add_option("--seed", o.seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return deepsearch::bench::Run(o);
}
