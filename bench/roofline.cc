#include "bench/roofline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <vector>

#include "common/model/torch_pch.h"

namespace deepsearch::bench {
namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

double MeasureSgemmGflops(int n, int repeats) {
  at::manual_seed(0);
  const at::Tensor a = at::randn({n, n});
  const at::Tensor b = at::randn({n, n});
  at::Tensor c = at::empty({n, n});
  at::mm_out(c, a, b);  // warm-up: page in, let BLAS set up its buffers
  double best = std::numeric_limits<double>::max();
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    at::mm_out(c, a, b);
    best = std::min(best, Seconds(start, std::chrono::steady_clock::now()));
  }
  return 2.0 * n * static_cast<double>(n) * n / best / 1e9;
}

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

}  // namespace deepsearch::bench
