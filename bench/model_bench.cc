// Prefill and decode throughput of the Qwen2 model with its KV cache, for the built-in
// presets, against the sgemm ceiling measured in the same run:
//
//   build/bench/model_bench [--presets tiny,small] [--batches 1,16,64,256] [--prompt 64] [--decode
//   64]
//
// For each preset and batch size B: B random prompts of --prompt tokens are prefilled in one
// step, then --decode single-token steps run over the whole batch (the in-place path: every
// live sequence, in slot order). Model FLOPs per token are 2 x (matmul parameters, lm_head
// included) + 4 x layers x heads x head_dim x context (QK^T and AV); the efficiency column is
// achieved GFLOP/s / sgemm GFLOP/s.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_split.h"

#include "bench/roofline.h"
#include "common/core/rng.h"
#include "common/model/qwen2_model.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t MatmulParameters(const Qwen2Config& c) {
  const int64_t embed = c.vocab_size * c.hidden_size;
  const int64_t norms = (2 * c.num_hidden_layers + 1) * c.hidden_size;
  const int64_t lm_head = c.tie_word_embeddings ? embed : 0;  // untied lm_head is already counted
  return c.NumParameters() - embed - norms + lm_head;
}

struct Result {
  double prefill_tokens_per_s;
  double decode_tokens_per_s;
  double prefill_gflops;
  double decode_gflops;
};

Result Run(const Qwen2Model& model, int64_t batch, int64_t prompt, int64_t decode) {
  const Qwen2Config& c = model.config();
  Rng rng(batch);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
  for (auto& p : prompts) {
    for (int64_t i = 0; i < prompt; ++i)
      p.push_back(static_cast<int32_t>(rng.UniformInt(0, c.vocab_size - 1)));
  }
  KvCache cache = model.NewCache(batch * ((prompt + decode) / KvCache::kBlock + 1));
  std::vector<StepInput> prefill;
  for (auto& p : prompts) prefill.push_back({cache.Create(), p});
  const double t0 = Now();
  at::Tensor logits = *model.Step(cache, prefill);
  const double t1 = Now();
  std::vector<int32_t> tokens(static_cast<size_t>(batch));
  std::vector<StepInput> step(static_cast<size_t>(batch));
  for (int64_t d = 0; d < decode; ++d) {
    const at::Tensor next = logits.argmax(-1).to(at::kInt).contiguous();
    for (int64_t b = 0; b < batch; ++b) {
      tokens[static_cast<size_t>(b)] = next.data_ptr<int32_t>()[b];
      step[static_cast<size_t>(b)] = {
          prefill[static_cast<size_t>(b)].sequence,
          absl::Span<const int32_t>(&tokens[static_cast<size_t>(b)], 1)};
    }
    logits = *model.Step(cache, step);
  }
  const double t2 = Now();
  const double matmul = 2.0 * static_cast<double>(MatmulParameters(c));
  const double attn_per_ctx =
      4.0 * static_cast<double>(c.num_hidden_layers * c.num_attention_heads * c.head_dim);
  // Prefill: token i attends to i+1 positions (mean (P+1)/2); decode: context P+1 .. P+D.
  const double prefill_flops =
      static_cast<double>(batch * prompt) * (matmul + attn_per_ctx * (prompt + 1) / 2.0);
  const double decode_flops =
      static_cast<double>(batch * decode) *
      (matmul + attn_per_ctx * (static_cast<double>(prompt) + (decode + 1) / 2.0));
  return {static_cast<double>(batch * prompt) / (t1 - t0),
          static_cast<double>(batch * decode) / (t2 - t1), prefill_flops / (t1 - t0) / 1e9,
          decode_flops / (t2 - t1) / 1e9};
}

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  using namespace deepsearch;
  CLI::App app{"Qwen2 model prefill/decode throughput against the sgemm ceiling"};
  std::string presets = "tiny,small", batches = "1,16,64,256";
  int64_t prompt = 64, decode = 64, vocab = 128;
  app.add_option("--presets", presets, "Comma-separated presets")->capture_default_str();
  app.add_option("--batches", batches, "Comma-separated batch sizes")->capture_default_str();
  app.add_option("--prompt", prompt, "Prompt tokens per sequence")->capture_default_str();
  app.add_option("--decode", decode, "Decode steps")->capture_default_str();
  app.add_option("--vocab", vocab, "Vocabulary size (the task tokenizer's, padded)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!ConfigureTorchRuntime(RuntimeConfig{}).ok()) return 1;
  c10::NoGradGuard no_grad;

  const bench::SgemmCeiling ceiling = bench::MeasureSgemm();
  const double sgemm = ceiling.best();
  std::printf(
      "sgemm ceiling: %.1f GFLOP/s (1024^3 fp32, 1 thread; OpenBLAS %.1f, packed kernel %.1f)\n\n",
      sgemm, ceiling.blas_gflops, ceiling.packed_gflops);
  std::printf(
      "| preset | params | batch | prefill tok/s | prefill GFLOP/s | prefill / ceiling | decode "
      "tok/s | decode GFLOP/s | decode / ceiling |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (absl::string_view preset : absl::StrSplit(presets, ',')) {
    auto config = Qwen2Config::Preset(std::string(preset), vocab);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    auto model = *Qwen2Model::Create(*config, {});
    model->InitializeRandom(1);
    for (absl::string_view b : absl::StrSplit(batches, ',')) {
      const int64_t batch = std::stoll(std::string(b));
      bench::Run(*model, batch, std::min<int64_t>(prompt, 8), 2);  // warm-up
      const bench::Result r = bench::Run(*model, batch, prompt, decode);
      std::printf("| %s | %.2fM | %lld | %.0f | %.1f | %.0f%% | %.0f | %.1f | %.0f%% |\n",
                  std::string(preset).c_str(), static_cast<double>(config->NumParameters()) / 1e6,
                  static_cast<long long>(batch), r.prefill_tokens_per_s, r.prefill_gflops,
                  100 * r.prefill_gflops / sgemm, r.decode_tokens_per_s, r.decode_gflops,
                  100 * r.decode_gflops / sgemm);
      std::fflush(stdout);
    }
  }
  return 0;
}
