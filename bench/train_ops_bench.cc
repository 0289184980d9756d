// The products of one training step of the `small` preset, each timed on its own: ATen
// (OpenBLAS) against the packed AVX-512 path of common/model/train_linear.h, forward alone and
// forward + backward, as GFLOP/s and as a fraction of the sgemm ceiling measured in the same
// run. Shapes: one micro-batch of 8 sequences, ~2,700 real tokens (padded T = 440 in
// attention), d = 384, 6 query heads over 2 KV heads of 64, intermediate 1024.
//
//   build/bench/train_ops_bench [--tokens 2719] [--seq 440] [--batch 8] [--repeats 5]
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/roofline.h"
#include "common/model/torch_pch.h"
#include "common/model/torch_runtime.h"
#include "common/model/train_linear.h"

namespace deepsearch {
namespace {

double BestSeconds(int repeats, const std::function<void()>& body) {
  body();  // warm-up: first touch of every buffer
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    body();
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

struct Op {
  std::string name;
  std::vector<at::Tensor> inputs;  // require grad
  double forward_flops = 0;        // the backward is twice this
  std::function<at::Tensor(const std::vector<at::Tensor>&, bool packed)> run;
};

int Main(int argc, char** argv) {
  CLI::App app{"Timings of the training step's matrix products, ATen against the packed path"};
  int64_t tokens = 2719, seq = 440, batch = 8;
  int repeats = 5;
  app.add_option("--tokens", tokens, "Real tokens of the micro-batch (the linears' rows)")
      ->capture_default_str();
  app.add_option("--seq", seq, "Padded sequence length (attention)")->capture_default_str();
  app.add_option("--batch", batch, "Sequences (attention)")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed repeats; the best is quoted")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!ConfigureTorchRuntime(RuntimeConfig{}).ok()) return 1;

  const int64_t d = 384, inter = 1024, heads = 6, kv = 2, hd = 64, rep = heads / kv;
  auto randn = [](std::vector<int64_t> sizes) {
    return at::randn(sizes, at::kFloat).requires_grad_(true);
  };
  auto linear = [](const std::vector<at::Tensor>& in, bool packed) {
    return packed ? TrainLinear(in[0], in[1]) : at::linear(in[0], in[1]);
  };
  auto matmul_nt = [](const std::vector<at::Tensor>& in, bool packed) {
    return packed ? TrainMatmulNT(in[0], in[1]) : at::matmul(in[0], in[1].transpose(-1, -2));
  };
  auto pv = [](const std::vector<at::Tensor>& in, bool packed) {  // p v with v [.., T, D]
    return packed ? TrainMatmulNT(in[0], in[1].transpose(-1, -2)) : at::matmul(in[0], in[1]);
  };
  const double l = static_cast<double>(batch * kv), m = static_cast<double>(rep * seq),
               t = static_cast<double>(seq), n_tok = static_cast<double>(tokens);
  std::vector<Op> ops = {
      {"qkv_proj",
       {randn({tokens, d}), randn({(heads + 2 * kv) * hd, d})},
       2 * n_tok * d * (heads + 2 * kv) * hd,
       linear},
      {"o_proj", {randn({tokens, d}), randn({d, d})}, 2 * n_tok * d * d, linear},
      {"gate_up_proj",
       {randn({tokens, d}), randn({2 * inter, d})},
       2 * n_tok * d * 2 * inter,
       linear},
      {"down_proj", {randn({tokens, inter}), randn({d, inter})}, 2 * n_tok * inter * d, linear},
      {"scores q k^T",
       {randn({batch, kv, rep * seq, hd}), randn({batch, kv, seq, hd})},
       2 * l * m * t * hd,
       matmul_nt},
      {"p v",
       {randn({batch, kv, rep * seq, seq}), randn({batch, kv, seq, hd})},
       2 * l * m * t * hd,
       pv},
  };

  const bench::SgemmCeiling ceiling = bench::MeasureSgemm();
  std::printf("sgemm ceiling: %.1f GFLOP/s (OpenBLAS %.1f, packed kernel %.1f)\n\n", ceiling.best(),
              ceiling.blas_gflops, ceiling.packed_gflops);
  std::printf("| product | GFLOP fwd | ATen fwd | packed fwd | ATen fwd+bwd | packed fwd+bwd |\n");
  std::printf("|---|---|---|---|---|---|\n");
  auto cell = [&](double flops, double seconds) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%.1f ms, %.0f GFLOP/s (%.0f%%)", seconds * 1e3,
                  flops / seconds / 1e9, 100 * flops / seconds / 1e9 / ceiling.best());
    return std::string(buf);
  };
  for (Op& op : ops) {
    std::string cells[4];
    for (int packed = 0; packed < 2; ++packed) {
      const double fwd = BestSeconds(repeats, [&] {
        c10::NoGradGuard no_grad;
        (void)op.run(op.inputs, packed != 0);
      });
      const double both = BestSeconds(repeats, [&] {
        for (at::Tensor& x : op.inputs) x.mutable_grad() = at::Tensor();
        const at::Tensor y = op.run(op.inputs, packed != 0);
        y.backward(at::ones_like(y));
      });
      cells[packed] = cell(op.forward_flops, fwd);
      cells[2 + packed] = cell(3 * op.forward_flops, both);
    }
    std::printf("| %s | %.2f | %s | %s | %s | %s |\n", op.name.c_str(), op.forward_flops / 1e9,
                cells[0].c_str(), cells[1].c_str(), cells[2].c_str(), cells[3].c_str());
  }
  return 0;
}

}  // namespace
}  // namespace deepsearch

int main(int argc, char** argv) { return deepsearch::Main(argc, argv); }
