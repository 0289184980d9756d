// The byte-plane kernels under the delta encoding: known planes of known words, and the
// piecewise kernels against the whole-tensor ones for every element size.
#include "common/weights/byte_planes.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/core/rng.h"

namespace deepsearch::weights_internal {
namespace {

std::vector<uint8_t> RandomBytes(size_t n, Rng& rng) {
  std::vector<uint8_t> bytes(n);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng.UniformInt(0, 255));
  return bytes;
}

TEST(BytePlanesTest, SplitsLittleEndianBytesIntoPlanes) {
  // Two u16 elements 0x1234 and 0xABCD against a zero base: plane 0 holds the low bytes.
  const std::vector<uint8_t> a = {0x34, 0x12, 0xCD, 0xAB}, zero(4, 0);
  std::vector<uint8_t> planes(4);
  SplitPlanes<2>(a.data(), zero.data(), 2, planes.data());
  EXPECT_EQ(planes, (std::vector<uint8_t>{0x34, 0xCD, 0x12, 0xAB}));
  // XOR with a base that shares the high bytes: the high plane is zeros.
  const std::vector<uint8_t> base = {0x30, 0x12, 0xCC, 0xAB};
  SplitPlanes<2>(a.data(), base.data(), 2, planes.data());
  EXPECT_EQ(planes, (std::vector<uint8_t>{0x04, 0x01, 0x00, 0x00}));
  std::vector<uint8_t> back(4);
  JoinPlanes<2>(planes.data(), base.data(), 2, back.data());
  EXPECT_EQ(back, a);
}

template <size_t E>
void CheckPiecesMatchWhole() {
  SCOPED_TRACE(E);
  Rng rng(E);
  const size_t n = 1000;
  const std::vector<uint8_t> a = RandomBytes(n * E, rng), b = RandomBytes(n * E, rng);
  std::vector<uint8_t> whole(n * E);
  SplitPlanes<E>(a.data(), b.data(), n, whole.data());
  for (size_t p = 0; p < E; ++p) {
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(whole[p * n + i], a[i * E + p] ^ b[i * E + p]);
  }
  // Plane by plane in uneven pieces, as the encoder walks a large tensor.
  std::vector<uint8_t> pieces, piece(300);
  for (size_t p = 0; p < E; ++p) {
    for (size_t first = 0; first < n; first += 300) {
      const size_t count = std::min<size_t>(300, n - first);
      SplitPlane<E>(a.data(), b.data(), p, first, count, piece.data());
      pieces.insert(pieces.end(), piece.begin(), piece.begin() + static_cast<long>(count));
    }
  }
  EXPECT_EQ(pieces, whole);
  std::vector<uint8_t> joined(n * E), joined_pieces(n * E, 0xEE);
  JoinPlanes<E>(whole.data(), b.data(), n, joined.data());
  EXPECT_EQ(joined, a);
  for (size_t p = 0; p < E; ++p) {
    for (size_t first = 0; first < n; first += 300) {
      const size_t count = std::min<size_t>(300, n - first);
      JoinPlane<E>(whole.data() + p * n + first, b.data(), p, first, count, joined_pieces.data());
    }
  }
  EXPECT_EQ(joined_pieces, a);
}

TEST(BytePlanesTest, PiecesMatchWholeTensors) {
  CheckPiecesMatchWhole<1>();
  CheckPiecesMatchWhole<2>();
  CheckPiecesMatchWhole<4>();
  CheckPiecesMatchWhole<8>();
}

TEST(BytePlanesTest, WithElementSizePassesTheConstant) {
  for (const size_t e : {1, 2, 4, 8}) {
    EXPECT_EQ(WithElementSize(e, [](auto k) { return decltype(k)::value; }), e);
  }
}

TEST(BytePlanesDeathTest, OtherElementSizesCrash) {
  EXPECT_DEATH(WithElementSize(3, [](auto k) { return decltype(k)::value; }), "element size 3");
}

}  // namespace
}  // namespace deepsearch::weights_internal
