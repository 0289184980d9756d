// UTF-8 helpers: validation, lossy decoding by maximal subparts, incomplete tails.
#include "common/tokenizer/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidatesAndReportsTheFirstBadByte) {
  size_t offset = 99;
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"));  // café 中 😀
  EXPECT_FALSE(IsValidUtf8("ab\xFF", &offset));
  EXPECT_EQ(offset, 2u);
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8"));          // truncated
}

TEST(Utf8Test, LossyReplacesEachMaximalSubpartOnce) {
  EXPECT_EQ(Utf8Lossy("ok"), "ok");
  EXPECT_EQ(Utf8Lossy("a\xFF"
                      "b"),
            "a" + kFffd + "b");
  // A truncated 4-byte sequence is one maximal subpart: one U+FFFD.
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98"
                      "x"),
            kFffd + "x");
  // E0 80: 80 cannot follow E0, so each byte is its own U+FFFD.
  EXPECT_EQ(Utf8Lossy("\xE0\x80"), kFffd + kFffd);
  // The Unicode standard's example (Table 3-8): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  EXPECT_EQ(Utf8Lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
}

TEST(Utf8Test, IncompleteSuffixIsOnlyAWellFormedPrefix) {
  EXPECT_EQ(IncompleteUtf8Suffix(""), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\x98\x80"), 0u);  // complete
  EXPECT_EQ(IncompleteUtf8Suffix("\xE0\x80"), 0u);           // already invalid
  EXPECT_EQ(IncompleteUtf8Suffix("\xFF"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xC3"), 1u);
}

TEST(Utf8Test, WhiteSpaceIsTheUnicodeProperty) {
  for (const char32_t c : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                           0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(IsUnicodeWhiteSpace(c)) << CodePointName(c);
  }
  for (const char32_t c : {0x00, 0x08, 0x1C, 0x41, 0x180E, 0x200B, 0xFEFF}) {
    EXPECT_FALSE(IsUnicodeWhiteSpace(c)) << CodePointName(c);
  }
}

TEST(Utf8Test, AppendEncodesEveryLength) {
  std::string s;
  for (const char32_t c : {0x41, 0xE9, 0x4E2D, 0x1F600}) AppendUtf8(c, &s);
  EXPECT_EQ(s, "A\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  EXPECT_EQ(CodePointName(0xE9), "U+00E9");
  EXPECT_EQ(CodePointName(0x1F600), "U+1F600");
}

}  // namespace
}  // namespace deepsearch
