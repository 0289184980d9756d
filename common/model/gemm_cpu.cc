#include "common/model/gemm_cpu.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common/core/logging.h"

namespace deepsearch::gemm_cpu {
namespace {

constexpr int64_t kPanel = 32;  // output columns per packed panel: two zmm vectors
constexpr int kMaxRows = 12;    // rows per micro-kernel call: 24 accumulators

// The micro-kernel: rows [0, R) of A against one panel, over all of k.
// `prefetch`, when set, is the next panel: its two cache lines per k are fetched into L2
// while this panel computes, so the weights stream from memory under the arithmetic.
template <int R>
__attribute__((target("avx512f"))) void Kernel(const float* a, int64_t lda, const float* panel,
                                               int64_t k, const float* bias, int64_t columns,
                                               bool accumulate, float* c, int64_t ldc,
                                               const float* prefetch) {
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    acc0[r] = _mm512_setzero_ps();
    acc1[r] = _mm512_setzero_ps();
  }
  const float* arow[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) arow[r] = a + r * lda;
  for (int64_t i = 0; i < k; ++i) {
    if (prefetch != nullptr) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + i * kPanel), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + i * kPanel + 16), _MM_HINT_T1);
    }
    const __m512 b0 = _mm512_loadu_ps(panel + i * kPanel);
    const __m512 b1 = _mm512_loadu_ps(panel + i * kPanel + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(arow[r][i]);
      acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
    }
  }
  // Store the `columns` (<= 32) valid columns, adding bias and the old C as asked.
  const __mmask16 m0 =
      columns >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << columns) - 1);
  const __mmask16 m1 = columns >= 32  ? static_cast<__mmask16>(0xFFFF)
                       : columns > 16 ? static_cast<__mmask16>((1u << (columns - 16)) - 1)
                                      : static_cast<__mmask16>(0);
  __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
  if (bias != nullptr) {
    bias0 = _mm512_maskz_loadu_ps(m0, bias);
    bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    float* crow = c + r * ldc;
    __m512 v0 = _mm512_add_ps(acc0[r], bias0), v1 = _mm512_add_ps(acc1[r], bias1);
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, crow));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, crow + 16));
    }
    _mm512_mask_storeu_ps(crow, m0, v0);
    _mm512_mask_storeu_ps(crow + 16, m1, v1);
  }
}

// The AVX2 + FMA micro-kernel: the same panel, as four ymm vectors, for R <= 3 rows (12
// accumulators of the 16 registers). Every output element is the same fma chain in k order as
// in Kernel, then + bias, then + C: the two kernels give bit-identical results, and neither
// depends on how many rows a call has (so batched and one-by-one decoding agree exactly).
constexpr int kMaxRowsAvx2 = 3;

template <int R>
__attribute__((target("avx2,fma"))) void KernelAvx2(const float* a, int64_t lda, const float* panel,
                                                    int64_t k, const float* bias, int64_t columns,
                                                    bool accumulate, float* c, int64_t ldc,
                                                    const float* prefetch) {
  __m256 acc[R][4];
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm256_setzero_ps();
  }
  const float* arow[R];
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r) arow[r] = a + r * lda;
  for (int64_t i = 0; i < k; ++i) {
    const float* b = panel + i * kPanel;
    if (prefetch != nullptr) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + i * kPanel), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + i * kPanel + 16), _MM_HINT_T1);
    }
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    const __m256 b2 = _mm256_loadu_ps(b + 16), b3 = _mm256_loadu_ps(b + 24);
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(arow[r] + i);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(x, b2, acc[r][2]);
      acc[r][3] = _mm256_fmadd_ps(x, b3, acc[r][3]);
    }
  }
  alignas(32) float bias_row[kPanel] = {};
  if (bias != nullptr) std::memcpy(bias_row, bias, sizeof(float) * static_cast<size_t>(columns));
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r) {
    float* crow = c + r * ldc;
    alignas(32) float v[kPanel];
    for (int q = 0; q < 4; ++q) {
      _mm256_store_ps(v + 8 * q, _mm256_add_ps(acc[r][q], _mm256_load_ps(bias_row + 8 * q)));
    }
    if (accumulate) {
      for (int64_t j = 0; j < columns; ++j) crow[j] = v[j] + crow[j];
    } else {
      std::memcpy(crow, v, sizeof(float) * static_cast<size_t>(columns));
    }
  }
}

using KernelFn = void (*)(const float*, int64_t, const float*, int64_t, const float*, int64_t, bool,
                          float*, int64_t, const float*);

constexpr KernelFn kKernels[kMaxRows + 1] = {
    nullptr,   Kernel<1>, Kernel<2>, Kernel<3>,  Kernel<4>,  Kernel<5>, Kernel<6>,
    Kernel<7>, Kernel<8>, Kernel<9>, Kernel<10>, Kernel<11>, Kernel<12>};
constexpr KernelFn kKernelsAvx2[kMaxRowsAvx2 + 1] = {nullptr, KernelAvx2<1>, KernelAvx2<2>,
                                                     KernelAvx2<3>};

bool HasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
std::atomic<bool> force_avx2{false};

bool UseAvx512() { return HasAvx512() && !force_avx2.load(std::memory_order_relaxed); }

}  // namespace

bool Available() { return HasAvx512() || HasAvx2(); }

const char* KernelName() {
  if (UseAvx512()) return "avx512";
  return HasAvx2() ? "avx2" : "none";
}

bool ForceAvx2ForTesting(bool force) {
  if (force && !HasAvx2()) return false;
  force_avx2.store(force, std::memory_order_relaxed);
  return true;
}

void PackedWeight::Free::operator()(float* p) const { std::free(p); }

PackedWeight PackedWeight::Pack(const float* w, int64_t n, int64_t k, int64_t ldw) {
  return PackStrided(w, n, k, ldw, 1);
}

PackedWeight PackedWeight::PackStrided(const float* w, int64_t n, int64_t k, int64_t row_stride,
                                       int64_t column_stride) {
  PackedWeight packed;
  packed.n_ = n;
  packed.k_ = k;
  const int64_t panels = (n + kPanel - 1) / kPanel;
  const size_t bytes = sizeof(float) * static_cast<size_t>(panels * k * kPanel);
  // 64-byte alignment: every panel row is one cache line.
  packed.data_.reset(static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
  DS_CHECK(packed.data_ != nullptr) << "cannot allocate " << bytes << " bytes for packed weights";
  float* out = packed.data_.get();
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t columns = std::min<int64_t>(kPanel, n - p * kPanel);
    const float* first = w + p * kPanel * row_stride;  // column p * 32, row 0
    for (int64_t i = 0; i < k; ++i) {
      float* row = out + (p * k + i) * kPanel;
      const float* src = first + i * column_stride;
      if (row_stride == 1) {  // a panel row is a contiguous run (the transposed packings)
        std::memcpy(row, src, sizeof(float) * static_cast<size_t>(columns));
      } else {
        for (int64_t j = 0; j < columns; ++j) row[j] = src[j * row_stride];
      }
      for (int64_t j = columns; j < kPanel; ++j) row[j] = 0.0f;
    }
  }
  return packed;
}

void Gemm(const float* a, int64_t lda, int64_t m, const PackedWeight& w, const float* bias,
          bool accumulate, float* c, int64_t ldc, int64_t k_block) {
  DS_CHECK(Available()) << "gemm_cpu::Gemm needs AVX-512F or AVX2 with FMA";
  const bool avx512 = UseAvx512();
  const KernelFn* kernels = avx512 ? kKernels : kKernelsAvx2;
  const int64_t max_rows = avx512 ? kMaxRows : kMaxRowsAvx2;
  const int64_t k = w.k(), n = w.n();
  const int64_t panels = (n + kPanel - 1) / kPanel;
  const int64_t block = k_block > 0 ? std::min(k_block, k) : k;
  for (int64_t k0 = 0;; k0 += block) {  // once at least: k == 0 still writes bias (and C)
    const int64_t kc = std::min(block, k - k0);
    // Panel-major: one 32-column panel's k block (kc x 128 bytes) stays in L2 while every row
    // block of A passes over it.
    for (int64_t p = 0; p < panels; ++p) {
      const float* panel = w.data() + p * k * kPanel + k0 * kPanel;
      const int64_t col = p * kPanel;
      const int64_t columns = std::min<int64_t>(kPanel, n - col);
      const float* panel_bias = bias != nullptr && k0 == 0 ? bias + col : nullptr;
      const float* next = p + 1 < panels ? panel + k * kPanel : nullptr;
      for (int64_t row = 0; row < m; row += max_rows) {
        const int rows = static_cast<int>(std::min<int64_t>(max_rows, m - row));
        // The first row block over this panel fetches the next one.
        kernels[rows](a + row * lda + k0, lda, panel, kc, panel_bias, columns, accumulate || k0 > 0,
                      c + row * ldc + col, ldc, row == 0 ? next : nullptr);
      }
    }
    if (k0 + block >= k) break;
  }
}

}  // namespace deepsearch::gemm_cpu
