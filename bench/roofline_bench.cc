// The machine's ceilings (see roofline.h), as Google Benchmark counters:
//   build/bench/roofline_bench
// Sgemm/n reports GFLOP/s for n^3 fp32 matmuls; Memcpy reports GB/s. Every other benchmark
// in bench/ quotes its result against these, measured in its own run.
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/roofline.h"
#include "common/core/runtime_config.h"
#include "common/model/gemm_cpu.h"
#include "common/model/torch_pch.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::bench {
namespace {

void BM_Sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::manual_seed(0);
  const at::Tensor a = at::randn({n, n});
  const at::Tensor b = at::randn({n, n});
  at::Tensor c = at::empty({n, n});
  for (auto _ : state) {
    at::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  // Shown as "GFLOP=<value>/s".
  state.counters["GFLOP"] =
      benchmark::Counter(2.0 * n * n * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Sgemm)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);

// The project's packed kernel (AVX-512 or AVX2, gemm_cpu::KernelName) on the same shapes (weights
// packed once, outside the timed loop).
void BM_PackedSgemm(benchmark::State& state) {
  if (!gemm_cpu::Available()) {
    state.SkipWithError("neither AVX-512F nor AVX2 with FMA on this CPU");
    return;
  }
  const int64_t n = state.range(0);
  at::manual_seed(0);
  const at::Tensor a = at::randn({n, n});
  const at::Tensor w = at::randn({n, n});
  at::Tensor c = at::empty({n, n});
  const gemm_cpu::PackedWeight packed = gemm_cpu::PackedWeight::Pack(w.data_ptr<float>(), n, n, n);
  for (auto _ : state) {
    gemm_cpu::Gemm(a.data_ptr<float>(), n, n, packed, nullptr, false, c.data_ptr<float>(), n);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.counters["GFLOP"] =
      benchmark::Counter(2.0 * n * n * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PackedSgemm)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);

void BM_Memcpy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20;
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  // Shown as "GB=<value>/s".
  state.counters["GB"] = benchmark::Counter(static_cast<double>(bytes) / 1e9,
                                            benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Memcpy)->Arg(256)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  if (auto s = deepsearch::ConfigureTorchRuntime(deepsearch::RuntimeConfig{}); !s.ok()) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
