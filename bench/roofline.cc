#include "bench/roofline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "common/model/gemm_cpu.h"
#include "common/model/torch_pch.h"

namespace deepsearch::bench {
namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

SgemmCeiling MeasureSgemm(int n, int repeats) {
  at::manual_seed(0);
  const at::Tensor a = at::randn({n, n});
  const at::Tensor b = at::randn({n, n});
  at::Tensor c = at::empty({n, n});
  const double flops = 2.0 * n * static_cast<double>(n) * n;
  auto best_of = [&](const std::function<void()>& run) {
    run();  // warm-up: page in, let the library set up its buffers
    double best = std::numeric_limits<double>::max();
    for (int i = 0; i < repeats; ++i) {
      const auto start = std::chrono::steady_clock::now();
      run();
      best = std::min(best, Seconds(start, std::chrono::steady_clock::now()));
    }
    return flops / best / 1e9;
  };
  SgemmCeiling ceiling;
  ceiling.blas_gflops = best_of([&] { at::mm_out(c, a, b); });
  if (gemm_cpu::Available()) {
    // c = a * b = a * (b^T)^T: pack b^T as the "weight".
    const at::Tensor bt = b.t().contiguous();
    const gemm_cpu::PackedWeight w = gemm_cpu::PackedWeight::Pack(bt.data_ptr<float>(), n, n, n);
    ceiling.packed_gflops = best_of([&] {
      gemm_cpu::Gemm(a.data_ptr<float>(), n, n, w, nullptr, false, c.data_ptr<float>(), n);
    });
  }
  return ceiling;
}

double MeasureSgemmGflops(int n, int repeats) { return MeasureSgemm(n, repeats).best(); }

double MeasureMemcpyGBps(size_t bytes, int repeats) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  std::memcpy(dst.data(), src.data(), bytes);  // warm-up: fault every page in
  double best = std::numeric_limits<double>::max();
  for (int i = 0; i < repeats; ++i) {
    src[static_cast<size_t>(i)] = static_cast<char>(i);  // keep the copies from being elided
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), bytes);
    best = std::min(best, Seconds(start, std::chrono::steady_clock::now()));
  }
  volatile char sink = dst[static_cast<size_t>(repeats - 1)];
  (void)sink;
  return static_cast<double>(bytes) / best / 1e9;
}

double MeasureDeviceCopyGBps(const std::string& device, size_t bytes, int repeats) {
  const auto options = at::TensorOptions().dtype(at::kByte).device(at::Device(device));
  const int64_t n = static_cast<int64_t>(bytes);
  const at::Tensor src = at::ones({n}, options);
  at::Tensor dst = at::empty({n}, options);
  auto copy = [&] {
    dst.copy_(src);
    return dst[n - 1].item<uint8_t>();  // a device-to-host read: waits for the copy
  };
  copy();  // warm-up
  double best = std::numeric_limits<double>::max();
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    copy();
    best = std::min(best, Seconds(start, std::chrono::steady_clock::now()));
  }
  return 2.0 * static_cast<double>(bytes) / best / 1e9;
}

}  // namespace deepsearch::bench
