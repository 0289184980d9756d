// The packed fp32 GEMM and the training linear built on it: gemm_cpu::Gemm against a naive
// double-precision product (strided packing, k blocks, bias, accumulation, ragged edges), and
// TrainLinear's forward and all three gradients against at::linear's autograd in float64.
#include "common/model/train_linear.h"

#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/core/rng.h"
#include "common/model/gemm_cpu.h"

namespace deepsearch {
namespace {

std::vector<float> RandomValues(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

at::Tensor RandomTensor(at::IntArrayRef sizes, uint64_t seed) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<float> v = RandomValues(n, seed);
  return at::from_blob(v.data(), sizes, at::kFloat).clone();
}

struct GemmCase {
  int64_t m, n, k, k_block;
  bool transposed, bias, accumulate;
};

class GemmCpuTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmCpuTest, MatchesNaiveProduct) {
  if (!gemm_cpu::Available()) GTEST_SKIP() << "neither AVX-512F nor AVX2 with FMA on this CPU";
  const GemmCase c = GetParam();
  const int64_t lda = c.k + 3, ldc = c.n + 5;  // strides wider than the rows
  const std::vector<float> a = RandomValues(c.m * lda, 1);
  // W [n, k], stored either row-major or as the row-major [k, n] matrix of its transpose.
  const std::vector<float> w = RandomValues(c.n * c.k, 2);
  auto w_at = [&](int64_t j, int64_t i) {
    return c.transposed ? w[static_cast<size_t>(i * c.n + j)] : w[static_cast<size_t>(j * c.k + i)];
  };
  const std::vector<float> bias = RandomValues(c.n, 3);
  std::vector<float> out = RandomValues(c.m * ldc, 4);
  const std::vector<float> before = out;
  const gemm_cpu::PackedWeight packed =
      c.transposed ? gemm_cpu::PackedWeight::PackStrided(w.data(), c.n, c.k, 1, c.n)
                   : gemm_cpu::PackedWeight::Pack(w.data(), c.n, c.k, c.k);
  gemm_cpu::Gemm(a.data(), lda, c.m, packed, c.bias ? bias.data() : nullptr, c.accumulate,
                 out.data(), ldc, c.k_block);
  for (int64_t r = 0; r < c.m; ++r) {
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(r * ldc + j);
      if (j >= c.n) {  // beyond the n columns nothing is written
        ASSERT_EQ(out[at], before[at]) << "row " << r << " column " << j;
        continue;
      }
      double expected = (c.accumulate ? before[at] : 0.0) + (c.bias ? bias[j] : 0.0);
      double magnitude = std::abs(expected);
      for (int64_t i = 0; i < c.k; ++i) {
        const double term = static_cast<double>(a[static_cast<size_t>(r * lda + i)]) * w_at(j, i);
        expected += term;
        magnitude += std::abs(term);
      }
      ASSERT_NEAR(out[at], expected, 2e-5 * magnitude + 1e-6) << "row " << r << " column " << j;
    }
  }
}

// Every row's result is the same whatever rows share the call, and the AVX2 kernel gives the
// AVX-512 kernel's bits (where the CPU has both; elsewhere the first half still holds).
TEST(GemmCpuKernelsTest, RowsAreIndependentOfTheBatchAndTheKernelsAgreeBitForBit) {
  if (!gemm_cpu::Available()) GTEST_SKIP() << "neither AVX-512F nor AVX2 with FMA on this CPU";
  const int64_t m = 29, n = 70, k = 300;
  const std::vector<float> a = RandomValues(m * k, 21);
  const std::vector<float> w = RandomValues(n * k, 22);
  const std::vector<float> bias = RandomValues(n, 23);
  const gemm_cpu::PackedWeight packed = gemm_cpu::PackedWeight::Pack(w.data(), n, k, k);
  auto product = [&](int64_t first, int64_t rows) {
    std::vector<float> c(static_cast<size_t>(rows * n));
    gemm_cpu::Gemm(a.data() + first * k, k, rows, packed, bias.data(), false, c.data(), n);
    return c;
  };
  const std::vector<float> all = product(0, m);
  for (int64_t r = 0; r < m; ++r) {
    const std::vector<float> alone = product(r, 1);
    for (int64_t j = 0; j < n; ++j) {
      ASSERT_EQ(alone[static_cast<size_t>(j)], all[static_cast<size_t>(r * n + j)])
          << gemm_cpu::KernelName() << " row " << r << " column " << j;
    }
  }
  // Without AVX-512 there is no second kernel to compare with: the rows above are the test.
  if (std::string(gemm_cpu::KernelName()) != "avx512") return;
  ASSERT_TRUE(gemm_cpu::ForceAvx2ForTesting(true));
  EXPECT_STREQ(gemm_cpu::KernelName(), "avx2");
  const std::vector<float> avx2 = product(0, m);
  gemm_cpu::ForceAvx2ForTesting(false);
  EXPECT_EQ(avx2, all);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GemmCpuTest,
    ::testing::Values(GemmCase{1, 1, 1, 0, false, false, false},
                      GemmCase{13, 45, 70, 0, false, true, false},     // ragged rows and panel
                      GemmCase{25, 64, 1030, 512, false, true, true},  // k blocks: 512+512+6
                      GemmCase{12, 33, 1030, 512, true, false, true},  // transposed packing
                      GemmCase{7, 20, 96, 32, true, true, false},      // k a multiple of the block
                      GemmCase{5, 17, 0, 512, false, true, true}));    // k = 0: bias (+ C) only

struct LinearCase {
  std::vector<int64_t> x_sizes;
  int64_t n;
  bool bias;
  bool strided_input;
};

class TrainLinearTest : public ::testing::TestWithParam<LinearCase> {};

TEST_P(TrainLinearTest, ForwardAndGradientsMatchAtenInDouble) {
  const LinearCase c = GetParam();
  const int64_t k = c.x_sizes.back();
  at::Tensor x = RandomTensor(c.x_sizes, 11);
  if (c.strided_input) {  // a non-contiguous view, as the attention output or a narrow gives
    std::vector<int64_t> wide = c.x_sizes;
    wide.back() = 2 * k;
    x = RandomTensor(wide, 12).narrow(-1, k / 2, k);
  }
  const at::Tensor w = RandomTensor({c.n, k}, 13);
  const at::Tensor b = c.bias ? RandomTensor({c.n}, 14) : at::Tensor();
  std::vector<int64_t> out_sizes = c.x_sizes;
  out_sizes.back() = c.n;
  const at::Tensor upstream = RandomTensor(out_sizes, 15);

  EXPECT_EQ(UsesPackedLinear(x, w), gemm_cpu::Available());
  const at::Tensor xf = x.detach().requires_grad_(true), wf = w.detach().requires_grad_(true);
  const at::Tensor bf = c.bias ? b.detach().requires_grad_(true) : at::Tensor();
  const at::Tensor y = TrainLinear(xf, wf, bf);
  (y * upstream).sum().backward();

  // The reference: ATen in float64.
  const at::Tensor xd = x.to(at::kDouble).requires_grad_(true);
  const at::Tensor wd = w.to(at::kDouble).requires_grad_(true);
  const at::Tensor bd = c.bias ? b.to(at::kDouble).requires_grad_(true) : at::Tensor();
  const at::Tensor yd = at::linear(xd, wd, bd);
  (yd * upstream.to(at::kDouble)).sum().backward();

  ASSERT_EQ(y.sizes(), yd.sizes());
  auto expect_close = [](const at::Tensor& got, const at::Tensor& want, const char* what) {
    ASSERT_TRUE(got.defined()) << what;
    ASSERT_EQ(got.sizes(), want.sizes()) << what;
    const double scale = want.abs().max().item<double>() + 1.0;
    const double error = (got.to(at::kDouble) - want).abs().max().item<double>();
    EXPECT_LT(error, 2e-5 * scale) << what << ": max error " << error << " at scale " << scale;
  };
  expect_close(y, yd, "output");
  expect_close(xf.grad(), xd.grad(), "d input");
  expect_close(wf.grad(), wd.grad(), "d weight");
  if (c.bias) expect_close(bf.grad(), bd.grad(), "d bias");
}

INSTANTIATE_TEST_SUITE_P(Shapes, TrainLinearTest,
                         ::testing::Values(LinearCase{{9, 40}, 33, true, false},
                                           LinearCase{{3, 7, 64}, 96, false, false},
                                           LinearCase{{2, 300, 48}, 67, true, true},  // k blocks
                                           LinearCase{{4, 600, 32}, 20, false, false}));

struct MatmulCase {
  std::vector<int64_t> batch;
  int64_t m, n, k;
  bool b_transposed_view;  // b given as the transpose of a [..., K, N] tensor, as p v^T^T is
};

class TrainMatmulTest : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(TrainMatmulTest, ForwardAndGradientsMatchAtenInDouble) {
  const MatmulCase c = GetParam();
  auto shape = [&](int64_t rows, int64_t columns) {
    std::vector<int64_t> s = c.batch;
    s.push_back(rows);
    s.push_back(columns);
    return s;
  };
  const at::Tensor a = RandomTensor(shape(c.m, c.k), 41);
  const at::Tensor b = c.b_transposed_view ? RandomTensor(shape(c.k, c.n), 42).transpose(-1, -2)
                                           : RandomTensor(shape(c.n, c.k), 42);
  const at::Tensor upstream = RandomTensor(shape(c.m, c.n), 43);
  EXPECT_EQ(UsesPackedMatmul(a, b), gemm_cpu::Available());

  const at::Tensor af = a.detach().requires_grad_(true), bf = b.detach().requires_grad_(true);
  const at::Tensor y = TrainMatmulNT(af, bf);
  (y * upstream).sum().backward();
  const at::Tensor ad = a.to(at::kDouble).requires_grad_(true);
  const at::Tensor bd = b.to(at::kDouble).requires_grad_(true);
  const at::Tensor yd = at::matmul(ad, bd.transpose(-1, -2));
  (yd * upstream.to(at::kDouble)).sum().backward();

  for (const auto& [got, want, what] :
       {std::tuple{y, yd, "output"}, std::tuple{af.grad(), ad.grad(), "d a"},
        std::tuple{bf.grad(), bd.grad(), "d b"}}) {
    ASSERT_TRUE(got.defined()) << what;
    ASSERT_EQ(got.sizes(), want.sizes()) << what;
    const double scale = want.abs().max().item<double>() + 1.0;
    const double error = (got.to(at::kDouble) - want).abs().max().item<double>();
    EXPECT_LT(error, 2e-5 * scale) << what << ": max error " << error;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, TrainMatmulTest,
                         ::testing::Values(MatmulCase{{3}, 13, 29, 8, false},
                                           MatmulCase{{2, 2}, 30, 17, 16, true},
                                           MatmulCase{{1, 3}, 40, 8, 600, true},  // k blocks
                                           MatmulCase{{2}, 1, 1, 1, false}));

TEST(TrainLinearTest, NoGradForwardMatchesAten) {
  c10::NoGradGuard no_grad;
  const at::Tensor x = RandomTensor({5, 11, 40}, 21), w = RandomTensor({70, 40}, 22),
                   b = RandomTensor({70}, 23);
  const at::Tensor y = TrainLinear(x, w, b);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(at::allclose(y, at::linear(x, w, b), 1e-5, 1e-5));
}

TEST(TrainLinearTest, OtherDtypesGoThroughAten) {
  const at::Tensor x = RandomTensor({3, 16}, 31).to(at::kDouble), w = RandomTensor({8, 16}, 32);
  EXPECT_FALSE(UsesPackedLinear(x, w.to(at::kDouble)));
  EXPECT_FALSE(UsesPackedLinear(x.to(at::kBFloat16), w.to(at::kBFloat16)));
  const at::Tensor wd = w.to(at::kDouble);
  EXPECT_TRUE(at::equal(TrainLinear(x, wd), at::linear(x, wd)));
}

}  // namespace
}  // namespace deepsearch
