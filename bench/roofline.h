// Ceilings measured on this machine, in the same run as a benchmark, so that every figure in
// docs/BENCHMARKS.md can be quoted as a fraction of what the hardware did right then:
//   * sgemm GFLOP/s: the faster of two fp32 n x n x n matrix products on one thread:
//     LibTorch's (OpenBLAS on CPU) and the project's packed kernel (gemm_cpu.h, AVX-512 or AVX2),
//     so no figure is flattered by a slow ceiling;
//   * memcpy GB/s: copies of a buffer much larger than the caches;
//   * device copy GB/s: the same on a torch device (a GPU's HBM), counted as the bytes read
//     plus the bytes written per second, the traffic a bandwidth-bound kernel is held to.
// Torch stays out of this header.
#pragma once

#include <cstddef>
#include <string>

namespace deepsearch::bench {

struct SgemmCeiling {
  double blas_gflops = 0;    // LibTorch / OpenBLAS
  double packed_gflops = 0;  // gemm_cpu (0 where the CPU has neither AVX-512 nor AVX2)
  double best() const { return blas_gflops > packed_gflops ? blas_gflops : packed_gflops; }
};

// Best of `repeats` timings of an n^3 fp32 matmul each way (after a warm-up), in GFLOP/s
// (2n^3 flops).
SgemmCeiling MeasureSgemm(int n = 1024, int repeats = 5);
// MeasureSgemm(n, repeats).best().
double MeasureSgemmGflops(int n = 1024, int repeats = 5);

// Best of `repeats` timings of memcpy over `bytes`, in GB/s (bytes copied per second, 1e9).
double MeasureMemcpyGBps(size_t bytes = size_t{256} << 20, int repeats = 5);

// Best of `repeats` timings of a tensor copy of `bytes` on `device` ("cpu", "cuda", "cuda:1"),
// in GB/s of traffic (2 x bytes per copy: read and written, 1e9). Each timing ends with a read
// back of one byte, so an asynchronous device has finished the copy.
double MeasureDeviceCopyGBps(const std::string& device, size_t bytes = size_t{1} << 30,
                             int repeats = 10);

}  // namespace deepsearch::bench
