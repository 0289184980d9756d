#include "common/core/hash.h"

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

// XXH3 reference values published with xxHash: XXH3_64bits("") = 2D06800538D394C2 and
// XXH3_128bits("") = 99AA06D3014798D86001C324468D497F.
TEST(HashTest, MatchesPublishedEmptyInputValues) {
  EXPECT_EQ(Hash64(""), 0x2D06800538D394C2ULL);
  EXPECT_EQ(HashHex64(Hash64("")), "2d06800538d394c2");
  EXPECT_EQ(Hash128Of("").Hex(), "99aa06d3014798d86001c324468d497f");
}

TEST(HashTest, StreamingEqualsOneShot) {
  const std::string text = "Let's think step by step and output the final answer within \\boxed{}.";
  StreamingHash64 h;
  h.Update(text.substr(0, 10));
  h.Update(text.substr(10, 1));
  h.Update(text.substr(11));
  EXPECT_EQ(h.Digest(), Hash64(text));
  EXPECT_NE(Hash64(text), Hash64(text + " "));
  EXPECT_NE(Hash64(text, 1), Hash64(text, 2));
}

}  // namespace
}  // namespace deepsearch
