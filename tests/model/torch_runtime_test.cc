#include "common/model/torch_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

TEST(TorchRuntimeTest, ThreadsAreConfigured) {
  ASSERT_TRUE(ConfigureTorchRuntime(RuntimeConfig{}).ok());
  const TorchRuntimeInfo info = GetTorchRuntimeInfo();
  EXPECT_EQ(info.intra_op_threads, 1);
  EXPECT_EQ(info.inter_op_threads, 1);
  EXPECT_FALSE(info.torch_version.empty());
}

// The environment trap this project guards against: without OpenBLAS, LibTorch on Debian
// resolves libblas.so.3 to the reference BLAS and runs ~16x slower. scripts/setup.sh
// installs libopenblas0-openmp; this test fails loudly if that ever regresses.
TEST(TorchRuntimeTest, BlasIsOpenBlas) {
  const TorchRuntimeInfo info = GetTorchRuntimeInfo();
  if (info.cuda_built) GTEST_SKIP() << "a CUDA LibTorch brings its own BLAS";
  EXPECT_THAT(info.blas_library, HasSubstr("openblas"));
}

}  // namespace
}  // namespace deepsearch
