// Ceilings measured on this machine, in the same run as a benchmark, so that every figure in
// docs/BENCHMARKS.md can be quoted as a fraction of what the hardware did right then:
//   * sgemm GFLOP/s: fp32 n x n x n matrix products through LibTorch (OpenBLAS on CPU),
//     with the process's thread settings;
//   * memcpy GB/s: copies of a buffer much larger than the caches.
// Torch stays out of this header.
#pragma once

#include <cstddef>

namespace deepsearch::bench {

// Best of `repeats` timings of an n^3 fp32 matmul (after one warm-up), in GFLOP/s (2n^3 flops).
double MeasureSgemmGflops(int n = 1024, int repeats = 5);

// Best of `repeats` timings of memcpy over `bytes`, in GB/s (bytes copied per second, 1e9).
double MeasureMemcpyGBps(size_t bytes = size_t{256} << 20, int repeats = 5);

}  // namespace deepsearch::bench
