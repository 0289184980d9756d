// Ceilings measured on this machine, in the same run as a benchmark, so that every figure in
// docs/BENCHMARKS.md can be quoted as a fraction of what the hardware did right then:
//   * sgemm GFLOP/s: the faster of two fp32 n x n x n matrix products on one thread:
//     LibTorch's (OpenBLAS on CPU) and the project's packed AVX-512 kernel (gemm_cpu.h),
//     so no figure is flattered by a slow ceiling;
//   * memcpy GB/s: copies of a buffer much larger than the caches.
// Torch stays out of this header.
#pragma once

#include <cstddef>

namespace deepsearch::bench {

struct SgemmCeiling {
  double blas_gflops = 0;    // LibTorch / OpenBLAS
  double packed_gflops = 0;  // gemm_cpu (0 where the CPU lacks AVX-512)
  double best() const { return blas_gflops > packed_gflops ? blas_gflops : packed_gflops; }
};

// Best of `repeats` timings of an n^3 fp32 matmul each way (after a warm-up), in GFLOP/s
// (2n^3 flops).
SgemmCeiling MeasureSgemm(int n = 1024, int repeats = 5);
// MeasureSgemm(n, repeats).best().
double MeasureSgemmGflops(int n = 1024, int repeats = 5);

// Best of `repeats` timings of memcpy over `bytes`, in GB/s (bytes copied per second, 1e9).
double MeasureMemcpyGBps(size_t bytes = size_t{256} << 20, int repeats = 5);

}  // namespace deepsearch::bench
