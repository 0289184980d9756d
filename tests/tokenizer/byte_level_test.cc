// GPT-2's byte-level alphabet.
#include "common/tokenizer/byte_level.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

TEST(ByteLevelTest, KnownCharacters) {
  EXPECT_EQ(ByteToUnicode(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(ByteToUnicode('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(ByteToUnicode('\t'), 0x109u);  // 'ĉ'
  EXPECT_EQ(ByteToUnicode(0x00), 0x100u);
  EXPECT_EQ(ByteToUnicode('A'), static_cast<char32_t>('A'));
  EXPECT_EQ(ByteToUnicode('~'), static_cast<char32_t>('~'));
  EXPECT_EQ(ByteToUnicode(0x7F), 0x121u);  // the 34th byte that is not printable
  EXPECT_EQ(ByteToUnicode(0xA0), 0x142u);
  EXPECT_EQ(ByteToUnicode(0xA1), 0xA1u);   // '¡' stands for itself
  EXPECT_EQ(ByteToUnicode(0xAD), 0x143u);  // the soft hyphen is the last one remapped
  EXPECT_EQ(ByteToUnicode(0xFF), 0xFFu);
}

TEST(ByteLevelTest, AllBytesRoundTrip) {
  std::set<char32_t> seen;
  std::string all;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = ByteToUnicode(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second) << "byte " << b << " shares its character";
    EXPECT_LE(c, 0x143u);
    ASSERT_TRUE(UnicodeToByte(c).has_value()) << b;
    EXPECT_EQ(*UnicodeToByte(c), b);
    all.push_back(static_cast<char>(b));
  }
  const std::string encoded = ByteLevelEncode(all);
  EXPECT_EQ(ByteLevelDecode(encoded), all);
}

TEST(ByteLevelTest, EncodesAndDecodesTokens) {
  EXPECT_EQ(ByteLevelEncode(" the"), "\xC4\xA0the");       // "Ġthe"
  EXPECT_EQ(ByteLevelEncode("\n\n"), "\xC4\x8A\xC4\x8A");  // "ĊĊ"
  // "é" is C3 A9, which stand for 'Ã' and '©'.
  EXPECT_EQ(ByteLevelEncode("\xC3\xA9"), "\xC3\x83\xC2\xA9");
  EXPECT_EQ(ByteLevelDecode("\xC4\xA0the"), " the");
  EXPECT_FALSE(ByteLevelDecode("\xE4\xB8\xAD").has_value());  // '中' is not in the alphabet
  EXPECT_FALSE(UnicodeToByte(0x20).has_value());              // the space is remapped
  EXPECT_FALSE(UnicodeToByte(0x144).has_value());
}

}  // namespace
}  // namespace deepsearch
